//! Webhook secrets at rest, through the `hookline-api` binary as an operator runs it:
//! `secrets rotate-key` moves every row onto the new key (and names a row it cannot open), and
//! the server refuses to start where the built-in dev key would protect nothing.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use diesel::{sql_types::Text, QueryableByName};
use diesel_async::RunQueryDsl as _;
use hookline_api::Application;
use hookline_store::testing::TestDatabase;

use crate::helpers::{json_of, run_api, spawn_app_with, test_settings};

fn key(id: &str, byte: u8) -> String {
    format!("{id}:{}", STANDARD.encode([byte; 32]))
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    secret: String,
}

#[tokio::test]
async fn rotate_key_re_encrypts_every_webhook_and_names_a_row_it_cannot_open() {
    let (k1, k2, k3) = (key("k1", 1), key("k2", 2), key("k3", 3));
    let app = spawn_app_with(|s| {
        s.secrets.keys = k1.clone().into();
        s.secrets.active_key = "k1".into();
    })
    .await;
    let mut secrets = Vec::new();
    for n in 0..5 {
        let created = app
            .webhook(
                "acme",
                &format!("https://example.com/hook{n}"),
                &["RECEIPTS"],
            )
            .await;
        secrets.push((
            created["id"].as_str().expect("id").to_owned(),
            created["secret"].as_str().expect("secret").to_owned(),
        ));
    }
    let db_url =
        hookline_config::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let raw = || async {
        let mut conn = app.pool().get().await.expect("conn");
        diesel::sql_query("SELECT secret FROM webhooks")
            .load::<Stored>(&mut conn)
            .await
            .expect("rows")
            .into_iter()
            .map(|r| r.secret)
            .collect::<Vec<_>>()
    };
    for s in raw().await {
        assert!(s.starts_with("enc:v1:k1:"), "{s}");
    }

    let keys = format!("{k2},{k1}");
    let out = run_api(
        &db_url,
        &["secrets", "rotate-key", "--batch", "2"],
        &[
            ("HOOKLINE__SECRETS__KEYS", &keys),
            ("HOOKLINE__SECRETS__ACTIVE_KEY", "k2"),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("re-encrypted 5 webhook(s) under key `k2`"),
        "{stdout}"
    );
    assert!(stdout.contains("key `k2`: 5 webhook(s)"), "{stdout}");
    assert!(!stdout.contains("`k1`"), "{stdout}");
    for s in raw().await {
        assert!(s.starts_with("enc:v1:k2:"), "{s}");
        assert!(!secrets.iter().any(|(_, plain)| s.contains(plain.as_str())));
    }
    // Nothing left to do: a second run changes nothing and says so.
    let again = run_api(
        &db_url,
        &["secrets", "rotate-key"],
        &[
            ("HOOKLINE__SECRETS__KEYS", &keys),
            ("HOOKLINE__SECRETS__ACTIVE_KEY", "k2"),
        ],
    )
    .await;
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("re-encrypted 0 webhook(s)"));

    // k1 can go: a server with k2 alone still shows each brand its secret.
    let mut settings = app.settings.clone();
    settings.secrets.keys = k2.clone().into();
    settings.secrets.active_key = "k2".into();
    let server = Application::build(settings).await.expect("builds");
    let base = format!("http://127.0.0.1:{}", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    for (id, plain) in &secrets {
        let res = app
            .client
            .get(format!("{base}/v1/acme/webhooks/{id}/secret"))
            .bearer_auth(app.token("acme"))
            .send()
            .await
            .expect("request");
        assert_eq!(json_of(res, 200).await["secret"], plain.as_str());
    }
    handle.stop(false).await;

    // With k2 missing, the rotation stops at the first row and names it and the key.
    let out = run_api(
        &db_url,
        &["secrets", "rotate-key"],
        &[
            ("HOOKLINE__SECRETS__KEYS", &k3),
            ("HOOKLINE__SECRETS__ACTIVE_KEY", "k3"),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`k2`")
            && stderr.contains("secrets.keys")
            && secrets.iter().any(|(id, _)| stderr.contains(id.as_str())),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for s in raw().await {
        assert!(s.starts_with("enc:v1:k2:"), "{s}");
    }
}

#[tokio::test]
async fn the_server_refuses_the_dev_key_in_production_and_beyond_loopback() {
    let db = TestDatabase::create().await;
    let url = test_settings(&db).database.url;
    let db_url = hookline_config::ExposeSecret::expose_secret(&url).to_owned();
    let hs256 = "k9Vq2xLr8ZpT4wYb6NcH1sJd3FgA7eMu-a-real-token-secret";
    let production = [
        ("HOOKLINE__ENV", "production"),
        ("HOOKLINE__AUTH__HS256_SECRET", hs256),
        ("HOOKLINE__AUTH__ISSUER", "https://auth.example.com/"),
        ("HOOKLINE__AUTH__AUDIENCE", "hookline"),
        ("HOOKLINE__HTTP__BIND", "127.0.0.1:0"),
    ];
    let out = run_api(&db_url, &["serve"], &production).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without a secrets key");
    assert!(
        stderr.contains("secrets.keys") && stderr.contains("HOOKLINE__SECRETS__KEYS"),
        "{stderr}"
    );

    // In dev, the dev key is refused too once the server listens beyond loopback (it fails
    // before binding anything).
    let out = run_api(
        &db_url,
        &["serve"],
        &[
            ("HOOKLINE__AUTH__HS256_SECRET", hs256),
            ("HOOKLINE__HTTP__BIND", "0.0.0.0:0"),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started with the dev key beyond loopback"
    );
    assert!(
        stderr.contains("secrets.keys") && stderr.contains("http.bind (0.0.0.0:0)"),
        "{stderr}"
    );
}

/// The production rules for the token secret and targets, as an operator meets them: the real
/// binary refuses to start, and says which key to set.
#[tokio::test]
async fn production_refuses_weak_token_secrets_and_private_targets_naming_the_key() {
    let db = TestDatabase::create().await;
    let url = test_settings(&db).database.url;
    let db_url = hookline_config::ExposeSecret::expose_secret(&url).to_owned();
    let keys = key("k1", 7);
    let good = "k9Vq2xLr8ZpT4wYb6NcH1sJd3FgA7eMu-a-real-token-secret";
    let base = [
        ("HOOKLINE__ENV", "production"),
        ("HOOKLINE__SECRETS__KEYS", keys.as_str()),
        ("HOOKLINE__SECRETS__ACTIVE_KEY", "k1"),
        ("HOOKLINE__AUTH__ISSUER", "https://auth.example.com/"),
        ("HOOKLINE__AUTH__AUDIENCE", "hookline"),
        ("HOOKLINE__HTTP__BIND", "127.0.0.1:0"),
    ];
    let cases: [(&[(&str, &str)], &str); 5] = [
        // Unset: the built-in dev secret.
        (&[], "auth.hs256_secret"),
        (
            &[("HOOKLINE__AUTH__HS256_SECRET", "short")],
            "auth.hs256_secret",
        ),
        (
            &[(
                "HOOKLINE__AUTH__HS256_SECRET",
                "CHANGE_ME-to-a-long-random-secret-of-32-bytes-or-more",
            )],
            "auth.hs256_secret",
        ),
        (
            &[
                ("HOOKLINE__AUTH__HS256_SECRET", good),
                ("HOOKLINE__DELIVERY__ALLOW_PRIVATE_TARGETS", "true"),
            ],
            "delivery.allow_private_targets",
        ),
        (
            &[
                ("HOOKLINE__AUTH__HS256_SECRET", good),
                ("HOOKLINE__AUTH__ISSUER", ""),
            ],
            "auth.issuer",
        ),
    ];
    for (extra, key_named) in cases {
        let env: Vec<(&str, &str)> = base.iter().chain(extra.iter()).copied().collect();
        let out = run_api(&db_url, &["serve"], &env).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {extra:?}");
        assert!(
            stderr.contains(key_named),
            "{extra:?} should name {key_named}: {stderr}"
        );
    }
}
