//! Webhook secrets at rest, on the API's side (`hookline_domain::sealed`): sealing the rows a
//! version before sealing left in plain text, and `hookline-api secrets rotate-key`.

use hookline_config::Settings;
use hookline_domain::Keyring;
use hookline_store::{secrets, Pool};

/// Rows sealed or re-sealed per transaction: short transactions, so a pass never holds many
/// row locks while the API rotates secrets beside it.
pub const BATCH: u32 = 500;

/// Seals every plain-text secret (rows written before secrets were sealed) under the active
/// key. Run after migrations, at start (`database.migrate_on_start`) and by `migrate`; several
/// replicas may run it at once (each batch skips rows another has locked).
pub async fn seal_plaintext(pool: &Pool, keyring: &Keyring) -> anyhow::Result<u64> {
    let mut conn = pool.get().await?;
    let sealed = secrets::reseal_all(&mut conn, keyring, secrets::Pass::Plaintext, BATCH).await?;
    if sealed > 0 {
        tracing::info!(
            webhooks = sealed,
            key = keyring.active_id(),
            "encrypted plain-text webhook secrets"
        );
    }
    Ok(sealed)
}

/// `hookline-api secrets rotate-key`: re-seals every secret not under the active key, in
/// batches of `batch`, and prints what it did and what each key still holds. Fails, naming the
/// webhook and the key id, when a row is under a key the configuration lacks.
pub async fn rotate_key(settings: &Settings, batch: u32) -> anyhow::Result<()> {
    let keyring = settings.secrets.keyring()?;
    let pool = crate::startup::build_pool(settings)?;
    let mut conn = pool.get().await?;
    let outcome =
        secrets::reseal_all(&mut conn, &keyring, secrets::Pass::NotActive, batch.max(1)).await;
    let in_use = secrets::keys_in_use(&mut conn).await?;
    if let Ok(moved) = &outcome {
        println!(
            "re-encrypted {moved} webhook(s) under key `{}`",
            keyring.active_id()
        );
    }
    for (key, webhooks) in &in_use {
        match key {
            Some(key) => println!("key `{key}`: {webhooks} webhook(s)"),
            None => println!("plain text: {webhooks} webhook(s)"),
        }
    }
    outcome.map_err(|e| {
        anyhow::anyhow!(
            "{e}; add that key back to secrets.keys and run `hookline-api secrets rotate-key` \
             again (the batches before this one are re-encrypted)"
        )
    })?;
    let left: i64 = in_use
        .iter()
        .filter(|(key, _)| key.as_deref() != Some(keyring.active_id()))
        .map(|(_, n)| n)
        .sum();
    anyhow::ensure!(
        left == 0,
        "{left} webhook(s) are still under other keys (written by a process with an older \
         secrets.active_key, or locked by a write meanwhile): run `hookline-api secrets \
         rotate-key` again once every process has the new active key"
    );
    Ok(())
}
