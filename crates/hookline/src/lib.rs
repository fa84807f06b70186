//! Hookline in one process: the API server and a delivery worker side by side, sharing one
//! configuration. It is what the README's quickstart runs. Production runs `hookline-api` and
//! any number of `hookline-worker`s instead; the two are the same code either way.

use hookline_api::Application;
use hookline_config::Settings;
use hookline_worker::{cancel_on_signal, Worker};
use tokio_util::sync::CancellationToken;

/// Starts the API (which applies migrations first, when configured) and then the worker; runs
/// until SIGTERM or ctrl-c, when both shut down gracefully.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings.clone()).await?;
    let worker = Worker::build(settings).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let api_handle = app.handle();
    let api = async {
        let result = app.run_until_stopped().await;
        // The API stopped (its own signal handling, or an error): stop the worker too.
        shutdown.cancel();
        result
    };
    let stop_api = async {
        shutdown.cancelled().await;
        api_handle.stop(true).await;
    };
    let (api_result, (), ()) =
        tokio::join!(api, worker.run_until_stopped(shutdown.clone()), stop_api);
    api_result?;
    tracing::info!("hookline stopped");
    Ok(())
}
