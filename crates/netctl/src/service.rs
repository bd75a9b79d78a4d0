//! `netctl service …`.

use netctl_plugin_api::client::Client;
use netctl_plugin_api::cluster::{ServiceCreateRequest, ServiceUpdateRequest};

use crate::cli::ServiceCommand;
use crate::each::{inspect, remove_each};
use crate::print;
use crate::print::cluster::{service_details, service_rows};
use crate::print::listing::Filters;

pub async fn service(client: Client, cmd: ServiceCommand) -> anyhow::Result<()> {
    match cmd {
        ServiceCommand::Create {
            name,
            network,
            replicas,
            publish,
        } => {
            let created = client
                .service_create(&ServiceCreateRequest {
                    name,
                    network,
                    replicas,
                    publish,
                })
                .await?;
            println!("{}", created.id);
        }
        ServiceCommand::Ls(args) => {
            let filters = Filters::parse(&args.filter, Filters::SERVICE)?;
            let mut services = client.service_list().await?;
            services.retain(|s| filters.service(s));
            print::list(&services, &args, service_rows)?;
        }
        ServiceCommand::Inspect(args) => {
            inspect(
                &args,
                |key| {
                    let client = client.clone();
                    async move { client.service_inspect(&key).await }
                },
                service_details,
            )
            .await?;
        }
        ServiceCommand::Update { name, replicas } => {
            let updated = client
                .service_update(&name, &ServiceUpdateRequest { replicas })
                .await?;
            println!("{}", updated.name);
        }
        ServiceCommand::Rm(args) => {
            remove_each(&args.names, |key| {
                let client = client.clone();
                async move { client.service_remove(&key).await }
            })
            .await?;
        }
    }
    Ok(())
}
