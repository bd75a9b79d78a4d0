//! `netctl cluster …` and `netctl node …`.

use anyhow::Context;
use netctl_plugin_api::client::Client;
use netctl_plugin_api::cluster::{
    ClusterInitRequest, ClusterJoinRequest, ClusterLeaveRequest, ClusterRestoreRequest,
    JoinTokenRequest, NodeRemoveRequest, StoreTlsMaterial,
};

use crate::cli::{ClusterCommand, NodeCommand, StoreTlsFlags};
use crate::each::inspect;
use crate::print;
use crate::print::cluster::{cluster_details, node_details, node_rows};
use crate::print::listing::Filters;
use crate::print::table::short;

pub async fn cluster(client: Client, cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Init {
            advertise_addr,
            store,
            vxlan_port,
            tls,
        } => {
            let req = ClusterInitRequest {
                advertise_addr,
                store,
                vxlan_port: Some(vxlan_port),
                store_tls: tls_material(&tls)?,
            };
            let cluster = client.cluster_init(&req).await?;
            println!(
                "Cluster initialized: this node ({}) is now a manager of cluster {}.",
                short(&cluster.this_node.id),
                cluster.id
            );
            println!();
            println!("To add a worker, run `netctl cluster join-token worker` and follow its instructions.");
            println!("To add a manager, run `netctl cluster join-token manager`.");
        }
        ClusterCommand::Join {
            token,
            advertise_addr,
            store,
            store_ca,
            manager,
        } => {
            let req = ClusterJoinRequest {
                token,
                advertise_addr,
                store,
                store_ca: store_ca.as_deref().map(read_pem).transpose()?,
                manager,
            };
            let cluster = client.cluster_join(&req).await?;
            println!(
                "This node joined cluster {} as a {}.",
                cluster.id, cluster.this_node.role
            );
        }
        ClusterCommand::JoinToken {
            role,
            quiet,
            rotate,
        } => {
            let token = client
                .cluster_join_token(&JoinTokenRequest { role, rotate })
                .await?;
            if quiet {
                println!("{}", token.token);
            } else {
                if rotate {
                    println!("Rotated the {} join token.", token.role);
                }
                println!("To add a {} to this cluster, run on it:", token.role);
                println!();
                println!("    {}", token.command);
            }
        }
        ClusterCommand::Certs { dir, host } => write_certs(&dir, &host)?,
        ClusterCommand::Leave { force } => {
            client.cluster_leave(&ClusterLeaveRequest { force }).await?;
            println!("Node left the cluster.");
        }
        ClusterCommand::Inspect { format } => {
            let cluster = client.cluster_inspect().await?;
            print::one(&cluster, &format, cluster_details)?;
        }
        ClusterCommand::Backup { file } => {
            let backup = client.cluster_backup().await?;
            let text = serde_json::to_vec_pretty(&backup)?;
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            let keys = backup["entries"].as_array().map_or(0, Vec::len);
            println!("{keys} keys written to {}", file.display());
        }
        ClusterCommand::Restore { file, store } => {
            let text =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let backup: serde_json::Value = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let restored = client
                .cluster_restore(&ClusterRestoreRequest { store, backup })
                .await?;
            println!("{} keys restored from {}", restored.keys, file.display());
        }
    }
    Ok(())
}

fn read_pem(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn tls_material(flags: &StoreTlsFlags) -> anyhow::Result<Option<StoreTlsMaterial>> {
    let (Some(ca), Some(ca_key), Some(cert), Some(key)) = (
        &flags.store_ca,
        &flags.store_ca_key,
        &flags.store_cert,
        &flags.store_key,
    ) else {
        return Ok(None);
    };
    Ok(Some(StoreTlsMaterial {
        ca: read_pem(ca)?,
        ca_key: read_pem(ca_key)?,
        cert: read_pem(cert)?,
        key: read_pem(key)?,
    }))
}

/// `cluster certs`: a new CA, etcd's server certificate and `root`'s client certificate.
/// Refuses to overwrite: a second CA would lock every node out.
fn write_certs(dir: &std::path::Path, hosts: &[String]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let ca = netctl_pki::Authority::generate("netctl cluster CA")?;
    let etcd = ca.server("etcd", hosts)?;
    let root = ca.client(ETCD_ADMIN)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        ("ca.pem", &ca.credential().cert_pem, 0o644),
        ("ca-key.pem", &ca.credential().key_pem, 0o600),
        ("etcd.pem", &etcd.cert_pem, 0o644),
        ("etcd-key.pem", &etcd.key_pem, 0o600),
        ("root.pem", &root.cert_pem, 0o644),
        ("root-key.pem", &root.key_pem, 0o600),
    ];
    for (name, text, mode) in files {
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// etcd's administrator, whose certificate `cluster init` is given.
const ETCD_ADMIN: &str = "root";

pub async fn node(client: Client, cmd: NodeCommand) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::Ls(args) => {
            let filters = Filters::parse(&args.filter, Filters::NODE)?;
            let mut nodes = client.node_list().await?;
            nodes.retain(|n| filters.node(n));
            print::list(&nodes, &args, node_rows)?;
        }
        NodeCommand::Inspect(args) => {
            inspect(
                &args,
                |key| {
                    let client = client.clone();
                    async move { client.node_inspect(&key).await }
                },
                node_details,
            )
            .await?;
        }
        NodeCommand::Promote(args) => role(&client, &args.names, "promote").await?,
        NodeCommand::Demote(args) => role(&client, &args.names, "demote").await?,
        NodeCommand::Rm { nodes, force } => {
            let mut failed = Vec::new();
            for node in &nodes {
                match client.node_remove(node, &NodeRemoveRequest { force }).await {
                    Ok(()) => println!("{node}"),
                    Err(e) => failed.push(format!("{node}: {e}")),
                }
            }
            if !failed.is_empty() {
                anyhow::bail!("{}", failed.join("; "));
            }
        }
    }
    Ok(())
}

async fn role(client: &Client, nodes: &[String], change: &str) -> anyhow::Result<()> {
    for name in nodes {
        let node = client.node_role(name, change).await?;
        println!("Node {} is now a {}.", node.hostname, node.role);
    }
    Ok(())
}
