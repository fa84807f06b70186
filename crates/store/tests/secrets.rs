//! Webhook secrets at rest against a real Postgres: what the table holds is sealed, bound to its
//! row, opens only with a known key, and the passes seal plain-text rows and move rows onto the
//! active key.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use chrono::Utc;
use diesel::{
    sql_types::{Nullable, Text, Uuid as SqlUuid},
    QueryableByName,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use hookline_domain::{Keyring, OpenError, WebhookSecret};
use hookline_store::{
    models::{NewWebhook, StoredSecret},
    secrets::{self, Pass, ResealError},
    testing::TestDatabase,
    webhooks,
};
use uuid::Uuid;

fn ring(active: &str, keys: &[(&str, u8)]) -> Keyring {
    let keys: Vec<String> = keys
        .iter()
        .map(|(id, byte)| format!("{id}:{}", STANDARD.encode([*byte; 32])))
        .collect();
    Keyring::parse(active, &keys.join(",")).expect("ring")
}

fn secret(s: &str) -> WebhookSecret {
    WebhookSecret::parse(s).expect("valid secret")
}

/// Creates a webhook of brand "a" whose secret is `plain`, sealed under `ring`'s active key.
async fn create(conn: &mut AsyncPgConnection, ring: &Keyring, n: usize, plain: &str) -> Uuid {
    let id = Uuid::now_v7();
    let types = vec!["RECEIPTS".to_owned()];
    webhooks::create(
        conn,
        &NewWebhook {
            id,
            brand_id: "a",
            endpoint: &format!("https://x{n}.example/"),
            event_types: &types,
            enabled: true,
            secret: StoredSecret::seal(ring, id, &secret(plain)),
        },
    )
    .await
    .expect("create");
    id
}

#[derive(QueryableByName, Debug)]
struct Raw {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    previous_secret: Option<String>,
}

/// What the table holds, read as plain SQL (what a dump or a replica shows).
async fn raw(conn: &mut AsyncPgConnection) -> Vec<Raw> {
    diesel::sql_query("SELECT id, secret, previous_secret FROM webhooks ORDER BY id")
        .load(conn)
        .await
        .expect("raw rows")
}

/// Inserts a row as a version before sealing wrote it: plain-text secrets.
async fn legacy(
    conn: &mut AsyncPgConnection,
    n: usize,
    plain: &str,
    previous: Option<&str>,
) -> Uuid {
    let id = Uuid::now_v7();
    diesel::sql_query(
        "INSERT INTO webhooks (id, brand_id, endpoint, event_types, secret, previous_secret, \
         previous_secret_expires_at) VALUES ($1, 'a', $2, ARRAY['RECEIPTS'], $3, $4, \
         now() + interval '1 hour')",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(format!("https://legacy{n}.example/"))
    .bind::<Text, _>(plain)
    .bind::<Nullable<Text>, _>(previous)
    .execute(conn)
    .await
    .expect("legacy row");
    id
}

async fn open(conn: &mut AsyncPgConnection, ring: &Keyring, id: Uuid) -> (String, Option<String>) {
    let w = webhooks::get(conn, "a", id)
        .await
        .expect("get")
        .expect("row");
    let current = w.secret.open(ring, id).expect("current opens");
    let previous = w.previous_secret.map(|p| {
        p.open(ring, id)
            .expect("previous opens")
            .expose()
            .to_owned()
    });
    (current.expose().to_owned(), previous)
}

#[tokio::test]
async fn the_table_holds_sealed_secrets_that_open_to_what_was_written() {
    let db = TestDatabase::create().await;
    let mut conn = db.pool().get().await.expect("conn");
    let ring = ring("k1", &[("k1", 1)]);
    let id = create(&mut conn, &ring, 0, "top_secret_one").await;
    let until = Utc::now() + chrono::Duration::hours(1);
    webhooks::rotate_secret(
        &mut conn,
        "a",
        id,
        &StoredSecret::seal(&ring, id, &secret("top_secret_two")),
        until,
    )
    .await
    .expect("rotate")
    .expect("row");

    let rows = raw(&mut conn).await;
    assert_eq!(rows.len(), 1);
    let stored = [
        Some(rows[0].secret.clone()),
        rows[0].previous_secret.clone(),
    ];
    for s in stored.iter().flatten() {
        assert!(s.starts_with("enc:v1:k1:"), "{s}");
        assert!(!s.contains("top_secret"), "{s}");
    }
    assert_eq!(
        open(&mut conn, &ring, id).await,
        ("top_secret_two".into(), Some("top_secret_one".into()))
    );
}

#[tokio::test]
async fn a_sealed_secret_copied_onto_another_row_does_not_open() {
    let db = TestDatabase::create().await;
    let mut conn = db.pool().get().await.expect("conn");
    let ring = ring("k1", &[("k1", 1)]);
    let victim = create(&mut conn, &ring, 0, "victim_secret").await;
    let attacker = create(&mut conn, &ring, 1, "attacker_secret").await;
    diesel::sql_query(
        "UPDATE webhooks SET secret = (SELECT secret FROM webhooks WHERE id = $1) WHERE id = $2",
    )
    .bind::<SqlUuid, _>(victim)
    .bind::<SqlUuid, _>(attacker)
    .execute(&mut conn)
    .await
    .expect("copy");
    let w = webhooks::get(&mut conn, "a", attacker)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(
        w.secret.open(&ring, attacker),
        Err(OpenError::Rejected("k1".into()))
    );
}

#[tokio::test]
async fn plain_text_rows_are_sealed_in_batches_and_only_once() {
    let db = TestDatabase::create().await;
    let mut conn = db.pool().get().await.expect("conn");
    let ring = Keyring::dev();
    let mut ids = Vec::new();
    for n in 0..5 {
        let previous = (n % 2 == 0).then_some("top_secret_prev");
        ids.push(legacy(&mut conn, n, &format!("top_secret_{n}"), previous).await);
    }
    // One row written after sealing began, so the pass must leave it as it is.
    let sealed = create(&mut conn, &ring, 9, "top_secret_new").await;
    let sealed_before = raw(&mut conn)
        .await
        .into_iter()
        .find(|r| r.id == sealed)
        .expect("row")
        .secret;
    // Plain text still opens (a rolling upgrade keeps signing) before it is sealed.
    assert_eq!(open(&mut conn, &ring, ids[1]).await.0, "top_secret_1");
    assert_eq!(
        secrets::keys_in_use(&mut conn).await.expect("counts"),
        [(None, 5), (Some("dev".into()), 1)]
    );

    assert_eq!(
        secrets::reseal_batch(&mut conn, &ring, Pass::Plaintext, 2)
            .await
            .expect("batch"),
        2
    );
    assert_eq!(
        secrets::reseal_all(&mut conn, &ring, Pass::Plaintext, 2)
            .await
            .expect("rest"),
        3
    );
    assert_eq!(
        secrets::reseal_all(&mut conn, &ring, Pass::Plaintext, 2)
            .await
            .expect("again"),
        0
    );

    for row in raw(&mut conn).await {
        assert!(row.secret.starts_with("enc:v1:dev:"), "{row:?}");
        assert!(!row.secret.contains("top_secret"));
        if let Some(p) = &row.previous_secret {
            assert!(
                p.starts_with("enc:v1:dev:") && !p.contains("top_secret"),
                "{row:?}"
            );
        }
        if row.id == sealed {
            assert_eq!(
                row.secret, sealed_before,
                "an already sealed row was rewritten"
            );
        }
    }
    for (n, id) in ids.iter().enumerate() {
        let expected_previous = (n % 2 == 0).then(|| "top_secret_prev".to_owned());
        assert_eq!(
            open(&mut conn, &ring, *id).await,
            (format!("top_secret_{n}"), expected_previous)
        );
    }
    assert_eq!(
        secrets::keys_in_use(&mut conn).await.expect("counts"),
        [(Some("dev".into()), 6)]
    );
}

#[tokio::test]
async fn rotating_the_key_moves_every_row_onto_the_active_key() {
    let db = TestDatabase::create().await;
    let mut conn = db.pool().get().await.expect("conn");
    let old = ring("k1", &[("k1", 1)]);
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(create(&mut conn, &old, n, &format!("top_secret_{n}")).await);
    }
    let until = Utc::now() + chrono::Duration::hours(1);
    webhooks::rotate_secret(
        &mut conn,
        "a",
        ids[0],
        &StoredSecret::seal(&old, ids[0], &secret("top_secret_rotated")),
        until,
    )
    .await
    .expect("rotate")
    .expect("row");
    legacy(&mut conn, 0, "top_secret_legacy", None).await;

    let both = ring("k2", &[("k2", 2), ("k1", 1)]);
    // A row sealed under the new key already is not rewritten.
    let fresh = create(&mut conn, &both, 99, "top_secret_fresh").await;
    let moved = secrets::reseal_all(&mut conn, &both, Pass::NotActive, 3)
        .await
        .expect("rotate key");
    assert_eq!(moved, 8);
    assert_eq!(
        secrets::keys_in_use(&mut conn).await.expect("counts"),
        [(Some("k2".into()), 9)]
    );
    // The old key can go: everything opens with the new one alone.
    let new_only = ring("k2", &[("k2", 2)]);
    assert_eq!(
        open(&mut conn, &new_only, ids[0]).await,
        ("top_secret_rotated".into(), Some("top_secret_0".into()))
    );
    for (n, id) in ids.iter().enumerate().skip(1) {
        assert_eq!(
            open(&mut conn, &new_only, *id).await.0,
            format!("top_secret_{n}")
        );
    }
    assert_eq!(
        open(&mut conn, &new_only, fresh).await.0,
        "top_secret_fresh"
    );
}

#[tokio::test]
async fn a_row_under_an_unknown_key_is_named_and_its_batch_left_untouched() {
    let db = TestDatabase::create().await;
    let mut conn = db.pool().get().await.expect("conn");
    let lost = ring("k0", &[("k0", 9)]);
    let id = create(&mut conn, &lost, 0, "top_secret_lost").await;
    let before = raw(&mut conn).await[0].secret.clone();

    let current = ring("k2", &[("k2", 2)]);
    let w = webhooks::get(&mut conn, "a", id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(
        w.secret.open(&current, id),
        Err(OpenError::UnknownKey("k0".into()))
    );
    let err = secrets::reseal_all(&mut conn, &current, Pass::NotActive, 10)
        .await
        .expect_err("unknown key");
    assert!(
        matches!(&err, ResealError::Open { webhook_id, source: OpenError::UnknownKey(k) }
            if *webhook_id == id && k == "k0"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&id.to_string()) && message.contains("`k0`"),
        "{message}"
    );
    assert_eq!(raw(&mut conn).await[0].secret, before);
}

#[tokio::test]
async fn no_type_holding_a_secret_shows_it_in_debug() {
    let db = TestDatabase::create().await;
    let mut conn = db.pool().get().await.expect("conn");
    let ring = Keyring::dev();
    let id = Uuid::now_v7();
    let types = vec!["RECEIPTS".to_owned()];
    let new = NewWebhook {
        id,
        brand_id: "a",
        endpoint: "https://x.example/",
        event_types: &types,
        enabled: true,
        secret: StoredSecret::seal(&ring, id, &secret("top_secret_debug")),
    };
    let created = webhooks::create(&mut conn, &new).await.expect("create");
    let until = Utc::now() + chrono::Duration::hours(1);
    let rotated = webhooks::rotate_secret(
        &mut conn,
        "a",
        id,
        &StoredSecret::seal(&ring, id, &secret("top_secret_debug2")),
        until,
    )
    .await
    .expect("rotate")
    .expect("row");
    let stored = raw(&mut conn).await;
    let texts = [
        format!("{new:?}"),
        format!("{created:?}"),
        format!("{rotated:?}"),
        format!("{:?}", rotated.secret),
        format!("{:?}", rotated.previous_secret),
        format!("{ring:?}"),
        format!("{:?}", secret("top_secret_debug")),
    ];
    for text in texts {
        assert!(!text.contains("top_secret_debug"), "{text}");
        assert!(!text.contains(&stored[0].secret), "{text}");
        assert!(
            !text.contains(hookline_domain::sealed::DEV_KEY_BASE64),
            "{text}"
        );
    }
    assert!(format!("{rotated:?}").contains("StoredSecret(***)"));
}
