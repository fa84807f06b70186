//! Liveness and readiness: unauthenticated, JSON.

use crate::helpers::{json_of, spawn_app};

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_token() {
    let app = spawn_app().await;
    let live = json_of(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("request"),
        200,
    )
    .await;
    assert_eq!(live["status"], "ok");
    let ready = json_of(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("request"),
        200,
    )
    .await;
    assert_eq!(ready["checks"]["database"], "ok");
}
