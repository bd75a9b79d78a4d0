//! The daemon's effector: each [`Effect`] carried out by the drivers, the sandbox
//! namespaces, the firewall gate, the DNS server or the lease clients.

use std::sync::Arc;

use netctl_drivers::{ClusterDriver, Driver, JoinTarget};
use netctl_kernel::Netns;

use super::dns::Make;
use super::effects::Effect;
use super::executor::Effector;
use super::lease_datapath;
use super::Controller;
use crate::controller::error::EngineError;
use crate::model::SandboxMode;

impl Controller {
    fn cluster_driver(&self, name: &str) -> Result<&Arc<dyn ClusterDriver>, EngineError> {
        self.drivers.cluster_driver(name).ok_or_else(|| {
            EngineError::internal(format!("no cluster-wide driver {name:?} in this daemon"))
        })
    }

    /// The sandbox's namespace, which the daemon holds open.
    fn namespace(&self, sandbox: &str) -> Result<Arc<Netns>, EngineError> {
        self.namespaces.get(sandbox).ok_or_else(|| {
            EngineError::internal(format!(
                "the network namespace of sandbox {sandbox} is not available"
            ))
        })
    }

    fn driver(&self, name: &str) -> Result<&Arc<dyn Driver>, EngineError> {
        self.drivers
            .get(name)
            .ok_or_else(|| EngineError::internal(format!("no driver {name:?} in this daemon")))
    }
}

#[async_trait::async_trait]
impl Effector for Controller {
    async fn apply(&self, effect: &Effect) -> Result<(), EngineError> {
        match effect {
            Effect::CreateNetwork { driver, net } => {
                let driver = self.driver(driver)?;
                driver.create_network(net).await.map_err(EngineError::from)
            }
            Effect::DeleteNetwork { driver, net } => {
                let driver = self.driver(driver)?;
                driver.delete_network(net).await.map_err(EngineError::from)
            }
            Effect::RestoreNetwork { driver, net } => {
                let driver = self.driver(driver)?;
                driver.restore_network(net).await.map_err(EngineError::from)
            }
            Effect::CollectGarbage { driver, wanted } => {
                let driver = self.driver(driver)?;
                driver
                    .collect_garbage(wanted)
                    .await
                    .map_err(EngineError::from)
            }
            Effect::RemoveStrayNamespace(path) => {
                tracing::info!(netns = %path.display(), "removing unwanted namespace");
                metrics::counter!("netctl_reconcile_repairs_total", "what" => "namespace")
                    .increment(1);
                netctl_kernel::netns::remove(path).map_err(EngineError::from)
            }
            Effect::CreateNamespace {
                sandbox,
                path,
                mode,
            } => {
                let made = match mode {
                    SandboxMode::Host => Netns::bind_current(path).await,
                    SandboxMode::Isolated => Netns::create(path).await,
                    SandboxMode::Runtime => Netns::open_runtime(path).await,
                };
                let made = made.map_err(EngineError::from)?;
                if *mode == SandboxMode::Isolated {
                    super::namespaces::remember_id(&self.paths, sandbox, &made);
                }
                self.namespaces.insert(sandbox, made);
                Ok(())
            }
            Effect::RemoveNamespace {
                sandbox,
                path,
                mode,
            } => {
                self.namespaces.remove(sandbox);
                match mode {
                    SandboxMode::Runtime => Ok(()),
                    _ => {
                        let _ = std::fs::remove_file(self.paths.netns_id(sandbox));
                        netctl_kernel::netns::remove(path).map_err(EngineError::from)
                    }
                }
            }
            Effect::ServeDns(sandbox) => self.start_dns(sandbox).await,
            Effect::StopDns(sandbox) => {
                self.stop_dns(sandbox);
                Ok(())
            }
            Effect::Join {
                driver,
                net,
                ep,
                sandbox,
            } => {
                let driver = self.driver(driver)?;
                self.background_leaves.wait_for(&ep.id).await;
                let netns = match sandbox {
                    Some(id) => Some(self.namespace(id)?),
                    None => None,
                };
                let target = match &netns {
                    Some(netns) => JoinTarget::Sandbox(netns),
                    None => JoinTarget::Runtime,
                };
                driver
                    .join(net, ep, target)
                    .await
                    .map_err(EngineError::from)
            }
            Effect::Leave { driver, net, ep } => {
                let driver = self.driver(driver)?;
                driver.leave(net, ep).await.map_err(EngineError::from)
            }
            Effect::LeaveLater { driver, net, ep } => {
                let (driver, net, spec) = (self.driver(driver)?.clone(), net.clone(), ep.clone());
                self.background_leaves.start(&ep.id, async move {
                    if let Some(delay) = netctl_crashpoint::delay_of("background leave") {
                        tokio::time::sleep(delay).await;
                    }
                    if let Err(e) = driver.leave(&net, &spec).await {
                        tracing::warn!(endpoint = %spec.id, error = %e, "cannot remove an endpoint's interface");
                    }
                });
                Ok(())
            }
            Effect::Publish(forwards) => self.firewall.publish(forwards).await,
            Effect::Unpublish(forwards) => self.firewall.unpublish(forwards).await,
            Effect::ReleaseLeases(endpoint) => {
                self.leases.release(endpoint).await;
                Ok(())
            }
            Effect::AddNames(names) => {
                self.dns.directory().add_endpoint(names.clone());
                Ok(())
            }
            Effect::RemoveNames(endpoint) => {
                self.dns.directory().remove_endpoint(endpoint);
                Ok(())
            }
            Effect::WriteHosts { sandbox, addresses } => self.write_hosts(sandbox, addresses),
            Effect::SpeakIpv6 { sandbox, ifname } => {
                let netns = self.namespace(sandbox)?;
                lease_datapath::speak_ipv6(&netns, ifname).await
            }
            Effect::ConfigureLease { sandbox, on } => match self.namespaces.get(sandbox) {
                Some(netns) => lease_datapath::configure(&netns, on).await,
                // The sandbox left meanwhile: its interface went with its namespace.
                None => Ok(()),
            },
            Effect::SetSandboxDns { sandbox, settings } => {
                let resolution = self.dns.add_sandbox(&sandbox.id, settings);
                self.write_resolv_conf(sandbox, &resolution, Make::No)
            }
            Effect::AddRemote {
                driver,
                vni,
                endpoint,
                remote,
            } => self
                .cluster_driver(driver)?
                .add_remote(*vni, endpoint, remote.clone())
                .await
                .map_err(EngineError::from),
            Effect::RemoveRemote {
                driver,
                vni,
                endpoint,
            } => self
                .cluster_driver(driver)?
                .remove_remote(*vni, endpoint)
                .await
                .map_err(EngineError::from),
        }
    }
}
