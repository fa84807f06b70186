use clap::Parser;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    hookline_api::cli::run(hookline_api::cli::Cli::parse()).await
}
