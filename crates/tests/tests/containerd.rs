//! containerd 1.6 (`ctr run --cni`) with netctl as its CNI plugin: ADD when the task starts
//! (a `/proc/PID/ns/net` namespace, no CNI_ARGS, no runtimeConfig), and DEL with an empty
//! CNI_NETNS when the foreground `ctr run` ends.

use std::time::Duration;

use netctl_netns_fixtures::containerd::Containerd;
use netctl_netns_fixtures::{command_in, Host, Output};
use tests::{containers_on, eventually, json, sandbox};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn ctr_run_cni_attaches_and_its_del_with_no_netns_detaches() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web", "--subnet", "10.96.0.0/24"])
        .expect_ok();
    let containerd = Containerd::start(&host);
    containerd.set_conflist(&json(&host.netctl(&["cni", "config", "web"]).expect_ok()));
    let mut task = containerd.run_foreground("t1", &["/bin/sleep", "1000"]);
    eventually("ADD", WAIT, || {
        if let Some(status) = task.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut task.stderr.take().unwrap(), &mut err).unwrap();
            panic!("ctr run ended ({status}): {err}");
        }
        containers_on(&host, "web").len() == 1
    });
    let ep = &containers_on(&host, "web")[0];
    assert_eq!(
        ep["Name"], "default-t1",
        "ctr's CNI_CONTAINERID is NAMESPACE-ID"
    );
    assert_eq!(ep["IPv4Address"], "10.96.0.2/24");
    let netns = sandbox(&host, "default-t1")["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        netns.starts_with("/proc/") && netns.ends_with("/ns/net"),
        "{netns}"
    );
    let inside = Output::from(
        command_in(std::path::Path::new(&netns), "ip")
            .args(["-br", "addr", "show", "eth0"])
            .output()
            .unwrap(),
    );
    assert!(
        inside.expect_ok().contains("10.96.0.2/24"),
        "{}",
        inside.stdout
    );
    containerd
        .ctr(&["tasks", "kill", "-s", "SIGKILL", "t1"])
        .expect_ok();
    let ended = task.wait().unwrap();
    assert!(!ended.success() || ended.success(), "ctr run ended");
    eventually("DEL with an empty CNI_NETNS", WAIT, || {
        containers_on(&host, "web").is_empty()
    });
    let listed = host
        .netctl(&["sandbox", "ls", "--format", "{{.Name}}"])
        .expect_ok();
    assert!(listed.trim().is_empty(), "{listed}");
}
