//! Commands over several named objects (`inspect A B`, `rm A B`): each asked in turn, what
//! fails said on stderr, and the command's status 1 if anything failed, as Docker's do.

use netctl_plugin_api::client::ClientError;

use crate::cli::InspectArgs;
use crate::exit::Exit;
use crate::print;

/// Asks for each of `keys` in turn; what is found is returned, what is not is said on
/// stderr (as `docker inspect A B` does), and the command then ends with status 1.
async fn each<T, F: std::future::Future<Output = Result<T, ClientError>>>(
    keys: &[String],
    mut ask: impl FnMut(String) -> F,
) -> (Vec<T>, bool) {
    let mut found = Vec::new();
    let mut failed = false;
    for key in keys {
        match ask(key.clone()).await {
            Ok(item) => found.push(item),
            Err(e) => {
                eprintln!("netctl: {e}");
                failed = true;
            }
        }
    }
    (found, failed)
}

/// `rm A B…`: each removed one's name on stdout, each failure on stderr; status 1 if any.
pub async fn remove_each<F>(keys: &[String], remove: impl FnMut(String) -> F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = Result<netctl_plugin_api::Removed, ClientError>>,
{
    let (removed, failed) = each(keys, remove).await;
    removed.iter().for_each(|r| println!("{}", r.name));
    if failed {
        return Err(Exit::reported());
    }
    Ok(())
}

/// `inspect A B…` in the format asked.
pub async fn inspect<T: serde::Serialize, F>(
    args: &InspectArgs,
    ask: impl FnMut(String) -> F,
    details: impl Fn(&T) -> String,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = Result<T, ClientError>>,
{
    let (found, failed) = each(&args.names, ask).await;
    print::details(&found, &args.format, details)?;
    if failed {
        return Err(Exit::reported());
    }
    Ok(())
}
