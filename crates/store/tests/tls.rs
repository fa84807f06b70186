//! `sslmode` and `sslrootcert` in the database URL, against real Postgres servers this test
//! starts: a throwaway cluster (`initdb`, `pg_ctl`) on a free port with a certificate signed by
//! a CA generated here, and one with TLS off. The machine's shared Postgres is not used: its TLS
//! set-up is not ours to choose.
//!
//! The TLS cluster accepts TCP connections only over TLS (`hostssl` in `pg_hba.conf`), so
//! every connection that succeeds there — the pool's, the migrations', creating the database —
//! was encrypted.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use diesel::{sql_types::BigInt, sql_types::Bool, QueryableByName};
use diesel_async::RunQueryDsl;
use hookline_store::{
    connect::establish,
    migrate::{ensure_database, run_migrations},
    pool::{build_pool, PoolOptions},
};
use hookline_testkit::tls::TestCa;

/// The newest `initdb`/`pg_ctl` installed (Debian puts them under /usr/lib/postgresql/N/bin).
fn pg_bin_dir() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
        .1
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// The numeric id of `user` (`id -u`/`id -g`).
fn id(flag: &str, user: Option<&str>) -> u32 {
    let mut cmd = Command::new("id");
    cmd.arg(flag);
    if let Some(user) = user {
        cmd.arg(user);
    }
    output(&mut cmd).parse().expect("numeric id")
}

/// A Postgres cluster of this test's own, stopped and deleted when dropped (also when the
/// test fails).
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Postgres refuses to run as root: when the test is root, the server runs as `postgres`.
    as_postgres: Option<(u32, u32)>,
}

impl Cluster {
    /// Starts a cluster; with `cert`, TLS is on and TCP connections must use it.
    fn start(cert: Option<&hookline_testkit::tls::ServerCert>) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "hookline-pg-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir(&dir).expect("cluster directory");
        let as_postgres =
            (id("-u", None) == 0).then(|| (id("-u", Some("postgres")), id("-g", Some("postgres"))));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // From here on, Drop cleans up whatever was made.
        let cluster = Cluster {
            dir,
            bin: pg_bin_dir(),
            port,
            as_postgres,
        };
        cluster.own(&cluster.dir);
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nfsync = off\nshared_buffers = 16MB\n\
             max_connections = 30\nlog_connections = on\n",
            cluster.dir.display()
        );
        if let Some(cert) = cert {
            cluster.write(&data.join("server.crt"), &cert.cert_pem);
            cluster.write(&data.join("server.key"), &cert.key_pem);
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            cluster.write(
                &data.join("pg_hba.conf"),
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 trust\n\
                 hostnossl all all 127.0.0.1/32 reject\n",
            );
        } else {
            conf.push_str("ssl = off\n");
        }
        let mut postgresql_conf =
            std::fs::read_to_string(data.join("postgresql.conf")).expect("postgresql.conf");
        postgresql_conf.push_str(&conf);
        cluster.write(&data.join("postgresql.conf"), &postgresql_conf);
        let log = cluster.dir.join("server.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self, host: &str, database: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/{database}{query}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Runs a server binary, as `postgres` when the test is root.
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut cmd = if self.as_postgres.is_some() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&program);
            cmd
        } else {
            Command::new(&program)
        };
        let out = cmd.args(args).output().expect("run a server binary");
        assert!(
            out.status.success(),
            "{program:?} {args:?} failed: {}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Writes a file the server can read (a key must be private to its owner).
    fn write(&self, file: &Path, contents: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(file, contents).expect("write cluster file");
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod cluster file");
        self.own(file);
    }

    fn own(&self, file: &Path) {
        if let Some((uid, gid)) = self.as_postgres {
            std::os::unix::fs::chown(file, Some(uid), Some(gid)).expect("chown to postgres");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        if data.join("postmaster.pid").exists() {
            let program = self.bin.join("pg_ctl");
            let mut cmd = if self.as_postgres.is_some() {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--"]).arg(&program);
                cmd
            } else {
                Command::new(&program)
            };
            let _ = cmd
                .args(["-D", path(&data), "-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A CA file for `sslrootcert`, in the cluster's directory (removed with it).
fn ca_file(cluster: &Cluster, name: &str, ca: &TestCa) -> String {
    let file = cluster.dir.join(name);
    std::fs::write(&file, ca.cert_pem()).expect("write CA file");
    path(&file).to_owned()
}

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

const SSL_IN_USE: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// Connects to `url` the way the store does and reports whether the session is encrypted,
/// or the connection error's text.
async fn encrypted(url: &str) -> Result<bool, String> {
    let mut conn = establish(url).await.map_err(|e| e.to_string())?;
    let row: Ssl = diesel::sql_query(SSL_IN_USE)
        .get_result(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.ssl)
}

async fn refused(url: &str) -> String {
    match encrypted(url).await {
        Ok(ssl) => panic!("{url} connected (ssl = {ssl}) but should have been refused"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn sslmode_is_honoured_against_a_tls_only_server() {
    let ca = TestCa::new("Hookline test CA");
    let cluster = Cluster::start(Some(&ca.issue(&["localhost"])));
    let ca_pem = ca_file(&cluster, "ca.pem", &ca);
    let other_pem = ca_file(&cluster, "other-ca.pem", &TestCa::new("Some other CA"));
    let url = |host: &str, query: &str| cluster.url(host, "postgres", query);

    // `require`: encrypted, the certificate not checked (libpq without a root certificate).
    assert_eq!(
        encrypted(&url("127.0.0.1", "?sslmode=require")).await,
        Ok(true)
    );
    assert_eq!(
        encrypted(&url("localhost", "?sslmode=prefer")).await,
        Ok(true)
    );
    // `verify-full` with the CA that signed the server's certificate, by the name it carries.
    let verify_full = format!("?sslmode=verify-full&sslrootcert={ca_pem}");
    assert_eq!(encrypted(&url("localhost", &verify_full)).await, Ok(true));
    // `verify-ca` checks the chain and not the name: 127.0.0.1 is not in the certificate.
    let verify_ca = format!("?sslmode=verify-ca&sslrootcert={ca_pem}");
    assert_eq!(encrypted(&url("127.0.0.1", &verify_ca)).await, Ok(true));
    // Other URL parameters still reach tokio-postgres.
    let with_more = format!("{verify_full}&application_name=hookline-tls-test");
    assert_eq!(encrypted(&url("localhost", &with_more)).await, Ok(true));

    // Refused, with a message that says why.
    let err = refused(&url(
        "localhost",
        &format!("?sslmode=verify-full&sslrootcert={other_pem}"),
    ))
    .await;
    assert!(
        err.contains("sslmode=verify-full") && err.contains("UnknownIssuer"),
        "another CA: {err}"
    );
    let err = refused(&url("127.0.0.1", &verify_full)).await;
    assert!(
        err.contains("not valid for name \"127.0.0.1\""),
        "a name the certificate does not carry: {err}"
    );
    let err = refused(&url("localhost", "?sslmode=verify-full")).await;
    assert!(
        err.contains("UnknownIssuer"),
        "the bundled public roots do not trust a private CA: {err}"
    );
    // As in libpq, `require` with a root certificate checks the chain.
    let err = refused(&url(
        "localhost",
        &format!("?sslmode=require&sslrootcert={other_pem}"),
    ))
    .await;
    assert!(
        err.contains("UnknownIssuer"),
        "require + sslrootcert: {err}"
    );
    let err = refused(&url(
        "localhost",
        "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ))
    .await;
    assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
    // The server takes TCP connections only over TLS: without it, its pg_hba.conf refuses.
    let err = refused(&url("127.0.0.1", "")).await;
    assert!(err.contains("no encryption"), "a plain URL: {err}");
    let err = refused(&url("127.0.0.1", "?sslmode=disable")).await;
    assert!(err.contains("no encryption"), "sslmode=disable: {err}");

    // Creating the database, migrating it and the pool, all over `verify-full`.
    let app_url = cluster.url("localhost", "hookline_tls", &verify_full);
    assert!(ensure_database(&app_url)
        .await
        .expect("create the database over TLS"));
    let applied = run_migrations(&app_url).await.expect("migrate over TLS");
    assert!(!applied.is_empty(), "the migrations ran");
    let pool = build_pool(
        &app_url,
        &PoolOptions {
            max_size: 2,
            ..PoolOptions::default()
        },
    )
    .expect("pool");
    let mut conn = pool.get().await.expect("a pooled connection over TLS");
    let row: Ssl = diesel::sql_query(SSL_IN_USE)
        .get_result(&mut conn)
        .await
        .expect("pg_stat_ssl");
    assert!(row.ssl, "the pool's connection is encrypted");
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let migrated: Count = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result(&mut conn)
        .await
        .expect("the migrations table");
    assert_eq!(migrated.n, i64::try_from(applied.len()).expect("count"));
    drop(conn);
    drop(pool);
    // The server saw the migration and pool sessions as TLS sessions.
    let log = cluster.log();
    assert!(
        log.lines()
            .any(|l| l.contains("database=hookline_tls") && l.contains("SSL enabled")),
        "server log:\n{log}"
    );
}

#[tokio::test]
async fn require_is_refused_by_a_server_without_tls_and_plain_urls_still_work() {
    let ca = TestCa::new("Hookline test CA");
    let cluster = Cluster::start(None);
    let ca_pem = ca_file(&cluster, "ca.pem", &ca);
    let url = |query: &str| cluster.url("localhost", "postgres", query);

    let err = refused(&url("?sslmode=require")).await;
    assert!(
        err.contains("sslmode=require") && err.contains("server does not support TLS"),
        "{err}"
    );
    let err = refused(&url(&format!("?sslmode=verify-full&sslrootcert={ca_pem}"))).await;
    assert!(err.contains("server does not support TLS"), "{err}");
    // `prefer` falls back to a plain session; no sslmode and `disable` never ask.
    assert_eq!(encrypted(&url("?sslmode=prefer")).await, Ok(false));
    assert_eq!(encrypted(&url("")).await, Ok(false));
    assert_eq!(encrypted(&url("?sslmode=disable")).await, Ok(false));

    // The store's migrations and pool on a plain URL, as before.
    let app_url = cluster.url("127.0.0.1", "hookline_plain", "");
    assert!(ensure_database(&app_url)
        .await
        .expect("create the database"));
    assert!(!ensure_database(&app_url).await.expect("it exists now"));
    assert!(!run_migrations(&app_url).await.expect("migrate").is_empty());
    let pool = build_pool(&app_url, &PoolOptions::default()).expect("pool");
    let mut conn = pool.get().await.expect("a pooled connection");
    let row: Ssl = diesel::sql_query(SSL_IN_USE)
        .get_result(&mut conn)
        .await
        .expect("pg_stat_ssl");
    assert!(!row.ssl);
}
