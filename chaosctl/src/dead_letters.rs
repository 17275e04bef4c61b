//! `chaosctl dead-letters list | show | redrive`.

use crate::cli::DeadLetterCommand;
use crate::Ctx;

pub async fn run(_ctx: &Ctx, _command: DeadLetterCommand) -> anyhow::Result<u8> {
    anyhow::bail!("not yet")
}
