//! `netctl version`: the client's and the daemon's, as `docker version` shows them.

use netctl_plugin_api::client::Client;
use serde::Serialize;

use crate::print;
use crate::print::template::Format;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Versions {
    client: Build,
    /// `None` when the daemon did not answer.
    server: Option<Build>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Build {
    version: String,
    api_version: String,
    git_commit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
}

pub async fn version(client: Client, format: &Format) -> anyhow::Result<()> {
    let answered = client.info().await;
    let versions = Versions {
        client: Build {
            version: netctl_daemon::VERSION.into(),
            api_version: netctl_plugin_api::API_VERSION.into(),
            git_commit: netctl_daemon::GIT_COMMIT.into(),
            pid: None,
        },
        server: answered.as_ref().ok().map(|info| Build {
            version: info.version.clone(),
            api_version: info.api_version.clone(),
            git_commit: info.git_commit.clone(),
            pid: Some(info.pid),
        }),
    };
    print::one(&versions, format, text)?;
    answered.map(|_| ()).map_err(Into::into)
}

fn text(v: &Versions) -> String {
    let build = |b: &Build| {
        let mut lines = vec![
            format!(" Version:     {}", b.version),
            format!(" API version: {}", b.api_version),
            format!(" Git commit:  {}", b.git_commit),
        ];
        if let Some(pid) = b.pid {
            lines.push(format!(" PID:         {pid}"));
        }
        lines.join("\n")
    };
    let mut out = format!("Client:\n{}\n", build(&v.client));
    if let Some(server) = &v.server {
        out.push_str(&format!("\nServer:\n{}\n", build(server)));
    }
    out
}
