//! The webhook queries against a real Postgres: brand scoping, the unique index, rotation.

use chrono::Utc;
use hookline_store::{models::NewWebhook, testing::TestDatabase, webhooks, StoreError};
use uuid::Uuid;

fn new_webhook<'a>(brand: &'a str, endpoint: &'a str, types: &'a [String]) -> NewWebhook<'a> {
    let id = Uuid::now_v7();
    NewWebhook {
        id,
        brand_id: brand,
        endpoint,
        event_types: types,
        enabled: true,
        secret: hookline_store::testing::sealed(id, "top_secret_old"),
    }
}

#[tokio::test]
async fn crud_is_scoped_by_brand() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let types = vec!["ORDER_EVENTS".to_owned()];
    let a = webhooks::create(&mut conn, &new_webhook("a", "https://a.example/h", &types))
        .await
        .expect("create");
    assert_eq!(a.event_types, types);
    assert!(webhooks::get(&mut conn, "b", a.id)
        .await
        .expect("get")
        .is_none());
    assert!(webhooks::list(&mut conn, "b")
        .await
        .expect("list")
        .is_empty());
    assert!(webhooks::set_enabled(&mut conn, "b", a.id, false, false)
        .await
        .expect("set")
        .is_none());
    assert!(!webhooks::delete(&mut conn, "b", a.id)
        .await
        .expect("delete"));

    let (was, row) = webhooks::set_enabled(&mut conn, "a", a.id, false, false)
        .await
        .expect("set")
        .expect("row");
    assert!(was);
    assert!(!row.enabled);
    assert_eq!(
        webhooks::list(&mut conn, "a").await.expect("list"),
        vec![row]
    );
    assert!(webhooks::delete(&mut conn, "a", a.id)
        .await
        .expect("delete"));
    assert!(webhooks::get(&mut conn, "a", a.id)
        .await
        .expect("get")
        .is_none());
}

#[tokio::test]
async fn same_endpoint_and_types_conflict_within_a_brand_only() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let types = vec!["RECEIPTS".to_owned()];
    webhooks::create(&mut conn, &new_webhook("a", "https://x.example/", &types))
        .await
        .expect("first");
    let err = webhooks::create(&mut conn, &new_webhook("a", "https://x.example/", &types))
        .await
        .expect_err("dup");
    assert!(
        matches!(err, StoreError::Conflict(ref c) if c == "webhooks_brand_endpoint_event_types_key"),
        "{err:?}"
    );
    webhooks::create(&mut conn, &new_webhook("b", "https://x.example/", &types))
        .await
        .expect("other brand");
    let other = vec!["NOTIFICATION".to_owned()];
    webhooks::create(&mut conn, &new_webhook("a", "https://x.example/", &other))
        .await
        .expect("other types");
}

#[tokio::test]
async fn rotation_keeps_the_previous_secret_until_the_grace_ends() {
    let db = TestDatabase::create().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let types = vec!["RECEIPTS".to_owned()];
    let w = webhooks::create(&mut conn, &new_webhook("a", "https://x.example/", &types))
        .await
        .expect("create");
    let until = Utc::now() + chrono::Duration::hours(1);
    let new = hookline_store::testing::sealed(w.id, "top_secret_new");
    let r = webhooks::rotate_secret(&mut conn, "a", w.id, &new, until)
        .await
        .expect("rotate")
        .expect("row");
    let ring = hookline_domain::Keyring::dev();
    let open = |s: &hookline_store::models::StoredSecret| {
        s.open(&ring, w.id).expect("opens").expose().to_owned()
    };
    assert_eq!(open(&r.secret), "top_secret_new");
    assert_eq!(
        r.previous_secret.as_ref().map(open).as_deref(),
        Some("top_secret_old")
    );
    assert!(r.previous_secret_expires_at.is_some());
    assert!(webhooks::rotate_secret(&mut conn, "b", w.id, &new, until)
        .await
        .expect("rotate")
        .is_none());
}

#[tokio::test]
async fn migrations_are_idempotent_and_ping_works() {
    let db = TestDatabase::create().await;
    assert!(hookline_store::migrate::run_migrations(&db.url)
        .await
        .expect("migrate")
        .is_empty());
    assert!(!hookline_store::migrate::ensure_database(&db.url)
        .await
        .expect("ensure"));
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    hookline_store::ping(&mut conn).await.expect("ping");
}
