//! The CLI as a well-kept Unix tool, with Docker's habits: pipes, errors, lookups, partial
//! failures, exit statuses, filters and formats, and the small commands around them.

use std::io::Read;
use std::process::{Command, Stdio};

use netctl_netns_fixtures::{netctl_bin, Host};
use tests::{json, sandbox};

fn cli(host: &Host) -> Command {
    let mut cmd = Command::new(netctl_bin());
    cmd.arg("--socket").arg(host.socket());
    cmd
}

#[test]
fn a_reader_that_goes_away_ends_the_cli_quietly() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web"]).expect_ok();
    let mut child = cli(&host)
        .args(["network", "inspect", "web", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -0`: the reader is gone before the first write.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.is_empty(), "{stderr}");
    assert_ne!(status.code(), Some(101), "no panic");
}

#[test]
fn errors_say_each_cause_once() {
    let host = Host::new();
    let err = host.netctl(&["network", "ls"]).expect_err();
    let socket = host.socket().display().to_string();
    assert_eq!(
        err.trim(),
        format!("netctl: cannot reach the netctl daemon at {socket}: No such file or directory (os error 2) (is `netctl daemon` running?)")
    );
}

#[test]
fn a_daemon_not_run_as_root_says_it_must_be() {
    let host = Host::new();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(netctl_bin())
        .args(["daemon", "--data-root", "/nonexistent/netctl"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        err.trim(),
        "netctl: netctl daemon must run as root: it makes network namespaces, links and nftables tables"
    );
    drop(host);
}

/// Docker's order: exact id, exact name, unique id prefix; an ambiguous prefix says so; rm
/// says by name what it removed.
#[test]
fn lookups_follow_docker_and_rm_names_what_it_removed() {
    let host = Host::with_daemon();
    let mut ids = Vec::new();
    // Seventeen ids: two of them start with the same hex digit.
    for i in 0..17 {
        let id = host
            .netctl(&["network", "create", &format!("n{i}")])
            .expect_ok();
        ids.push(id.trim().to_string());
    }
    let first = |id: &String| id[..1].to_string();
    let shared = ids
        .iter()
        .find(|id| ids.iter().filter(|o| first(o) == first(id)).count() > 1)
        .map(first)
        .unwrap();
    let err = host.netctl(&["network", "inspect", &shared]).expect_err();
    assert!(
        err.contains(&format!("network {shared} is ambiguous")),
        "{err}"
    );
    // A network named as another's id: the id wins.
    host.netctl(&["network", "create", &ids[0]]).expect_ok();
    let found = json(
        &host
            .netctl(&["network", "inspect", &ids[0], "--format", "json"])
            .expect_ok(),
    );
    assert_eq!(found[0]["Name"], "n0");
    let removed = host.netctl(&["network", "rm", &ids[1][..12]]).expect_ok();
    assert_eq!(removed.trim(), "n1");
}

#[test]
fn inspect_prints_what_it_found_and_fails_for_the_rest() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web"]).expect_ok();
    let out = host.netctl(&["network", "inspect", "web", "nosuch", "--format", "json"]);
    assert_eq!(out.status, 1);
    assert_eq!(json(&out.stdout).as_array().unwrap().len(), 1);
    assert_eq!(out.stderr.trim(), "netctl: network nosuch not found");
    let none = host.netctl(&["network", "inspect", "nosuch", "--format", "json"]);
    assert_eq!((none.status, none.stdout.trim()), (1, "[]"));
    let rm = host.netctl(&["network", "rm", "nosuch", "web"]);
    assert_eq!((rm.status, rm.stdout.trim()), (1, "web"));
    assert!(
        rm.stderr.contains("network nosuch not found"),
        "{}",
        rm.stderr
    );
    let template = host.netctl(&["sandbox", "inspect", "-f", "{{.Name}}", "nosuch"]);
    assert_eq!(template.status, 1);
}

#[test]
fn sandbox_exec_exits_as_a_shell_does() {
    let host = Host::with_daemon();
    host.netctl(&["sandbox", "create", "a"]).expect_ok();
    let missing = host.sandbox_exec("a", &["no-such-command"]);
    assert_eq!(missing.status, 127, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("cannot run no-such-command"),
        "{}",
        missing.stderr
    );
    let plain = host.dir().join("plain-file");
    std::fs::write(&plain, "not a program").unwrap();
    let not_executable = host.sandbox_exec("a", &[plain.to_str().unwrap()]);
    assert_eq!(not_executable.status, 126, "{}", not_executable.stderr);
    assert_eq!(host.sandbox_exec("a", &["sh", "-c", "exit 7"]).status, 7);
}

#[test]
fn listings_filter_and_format_as_docker_does() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web", "--label", "env=dev"])
        .expect_ok();
    host.netctl(&["network", "create", "db", "--internal"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "a", "--network", "web"])
        .expect_ok();
    let names = |args: &[&str]| {
        let mut all = vec!["network", "ls", "--format", "{{.Name}}"];
        all.extend_from_slice(args);
        let out = host.netctl(&all).expect_ok();
        let mut names: Vec<String> = out.lines().map(String::from).collect();
        names.sort();
        names
    };
    assert_eq!(names(&["--filter", "name=we"]), ["web"]);
    assert_eq!(names(&["-f", "label=env=dev"]), ["web"]);
    assert_eq!(names(&["-f", "label=env"]), ["web"]);
    assert_eq!(names(&["-f", "type=builtin"]), ["host", "none"]);
    assert_eq!(
        names(&["-f", "driver=bridge", "-f", "dangling=true"]),
        ["db"]
    );
    assert_eq!(names(&["-f", "name=web", "-f", "name=db"]), ["db", "web"]);
    assert_eq!(names(&["-f", "scope=global"]), Vec::<String>::new());
    let bad = host
        .netctl(&["network", "ls", "-f", "colour=red"])
        .expect_err();
    assert!(bad.contains("invalid filter \"colour\""), "{bad}");

    // Templates: fields, json, a table with its header.
    let line = host
        .netctl(&[
            "network",
            "ls",
            "-f",
            "name=web",
            "--format",
            "{{.Name}} {{.Driver}} {{.Internal}}",
        ])
        .expect_ok();
    assert_eq!(line.trim(), "web bridge false");
    let row = json(
        &host
            .netctl(&["network", "ls", "-f", "name=web", "--format", "{{json .}}"])
            .expect_ok(),
    );
    assert_eq!(
        (row["Name"].as_str(), row["Labels"].as_str()),
        (Some("web"), Some("env=dev"))
    );
    let table = host
        .netctl(&[
            "network",
            "ls",
            "-f",
            "name=web",
            "--format",
            "table {{.ID}}\\t{{.Name}}",
        ])
        .expect_ok();
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("NETWORK ID"), "{table}");
    assert!(lines.next().unwrap().ends_with("web"), "{table}");

    // -q: ids, whatever --format says; --no-trunc: whole ids.
    let id = json(
        &host
            .netctl(&["network", "inspect", "web", "--format", "json"])
            .expect_ok(),
    )[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let quiet = host
        .netctl(&["network", "ls", "-q", "--format", "json", "-f", "name=web"])
        .expect_ok();
    assert_eq!(quiet.trim(), &id[..12]);
    let whole = host
        .netctl(&["network", "ls", "-q", "--no-trunc", "-f", "name=web"])
        .expect_ok();
    assert_eq!(whole.trim(), id);
    assert!(host
        .netctl(&["network", "ls", "--no-trunc"])
        .expect_ok()
        .contains(&id));

    // inspect -f, and sandbox listings.
    let driver = host
        .netctl(&[
            "network",
            "inspect",
            "-f",
            "{{.Driver}} {{index .Labels \"env\"}}",
            "web",
        ])
        .expect_ok();
    assert_eq!(driver.trim(), "bridge dev");
    let sandboxes = host
        .netctl(&[
            "sandbox",
            "ls",
            "-f",
            "network=web",
            "--format",
            "{{.Name}}:{{.Networks}}",
        ])
        .expect_ok();
    assert_eq!(sandboxes.trim(), "a:web");
}

#[test]
fn network_prune_removes_what_nothing_uses_and_exists_answers_by_status() {
    let host = Host::with_daemon();
    for args in [
        &["network", "create", "used"][..],
        &["network", "create", "idle"],
        &["network", "create", "kept", "--label", "keep=yes"],
        &["sandbox", "create", "a", "--network", "used"],
    ] {
        host.netctl(args).expect_ok();
    }
    let pruned = host
        .netctl(&["network", "prune", "-f", "--filter", "label!=keep"])
        .expect_ok();
    assert_eq!(pruned.trim(), "Deleted Networks:\nidle");
    assert_eq!(host.netctl(&["network", "exists", "idle"]).status, 1);
    assert_eq!(host.netctl(&["network", "exists", "used"]).status, 0);
    assert_eq!(host.netctl(&["network", "exists", "kept"]).status, 0);
    assert_eq!(host.netctl(&["network", "exists", "host"]).status, 0);
    // Asked and not confirmed (stdin is empty): nothing goes.
    let mut ask = cli(&host)
        .args(["network", "prune"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(ask.status.success());
    ask.stdout.retain(|b| *b != b'\n');
    assert!(ask.stdout.is_empty());
    assert_eq!(host.netctl(&["network", "exists", "kept"]).status, 0);
}

#[test]
fn names_aliases_and_hostnames_are_dns_names() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web"]).expect_ok();
    let long = "a".repeat(64);
    for (args, said) in [
        (
            vec!["sandbox", "create", long.as_str()],
            "invalid sandbox name",
        ),
        (
            vec!["sandbox", "create", "a", "--hostname", "bad_host-"],
            "invalid hostname",
        ),
        (
            vec!["sandbox", "create", "a", "--hostname", "a..b"],
            "invalid hostname",
        ),
        (
            vec![
                "sandbox",
                "create",
                "a",
                "--network",
                "web",
                "--alias",
                "two words",
            ],
            "invalid alias \"two words\"",
        ),
        (
            vec!["sandbox", "create", "a", "--add-host", "db:not-an-address"],
            "invalid --add-host",
        ),
    ] {
        let err = host.netctl(&args).expect_err();
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(err.contains("labels") || said.contains("add-host"), "{err}");
    }
    assert_eq!(
        host.netctl(&["sandbox", "ls", "-q"]).expect_ok().trim(),
        "",
        "nothing was made"
    );
}

#[test]
fn add_host_lines_and_docker_s_ports_map() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web"]).expect_ok();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "--add-host",
        "db:192.0.2.10",
        "--add-host",
        "v6=2001:db8::10",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:9090:90/udp",
    ])
    .expect_ok();
    let hosts = host.sandbox_exec("a", &["cat", "/etc/hosts"]).expect_ok();
    assert!(hosts.contains("192.0.2.10\tdb\n"), "{hosts}");
    assert!(hosts.contains("2001:db8::10\tv6\n"), "{hosts}");
    let inspect = sandbox(&host, "a");
    assert_eq!(
        inspect["ExtraHosts"],
        serde_json::json!(["db:192.0.2.10", "v6:2001:db8::10"])
    );
    let ports = &inspect["NetworkSettings"]["Ports"];
    assert_eq!(
        ports["80/tcp"],
        serde_json::json!([{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}])
    );
    assert_eq!(
        ports["90/udp"],
        serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": "9090"}])
    );
    // netctl port, whole and for one port.
    let all = host.netctl(&["port", "a"]).expect_ok();
    assert_eq!(
        all.trim(),
        "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n90/udp -> 127.0.0.1:9090"
    );
    assert_eq!(
        host.netctl(&["port", "a", "80"]).expect_ok().trim(),
        "0.0.0.0:8080\n[::]:8080"
    );
    let none = host.netctl(&["port", "a", "81/tcp"]).expect_err();
    assert!(
        none.contains("no public port 81/tcp published for a"),
        "{none}"
    );
}

#[test]
fn a_taken_port_names_its_holder_and_lo_down_is_said() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web"]).expect_ok();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "-p",
        "8080:80",
    ])
    .expect_ok();
    let err = host
        .netctl(&[
            "sandbox",
            "create",
            "b",
            "--network",
            "web",
            "-p",
            "8080:81",
        ])
        .expect_err();
    assert!(
        err.contains("port 0.0.0.0:8080/tcp is already published by sandbox a on network web"),
        "{err}"
    );
    // As in a namespace just made: lo down, without its addresses.
    host.ip(&["link", "set", "lo", "down"]).expect_ok();
    host.ip(&["addr", "flush", "dev", "lo"]).expect_ok();
    let err = host
        .netctl(&[
            "sandbox",
            "create",
            "c",
            "--network",
            "web",
            "-p",
            "127.0.0.1:8081:80",
        ])
        .expect_err();
    assert!(err.contains("the loopback interface lo is down"), "{err}");
    host.ip(&["link", "set", "lo", "up"]).expect_ok();
}

#[test]
fn docker_bridge_options_name_the_bridge_and_turn_masquerading_off() {
    let host = Host::with_daemon();
    host.netctl(&[
        "network",
        "create",
        "web",
        "--subnet",
        "172.30.0.0/24",
        "-o",
        "com.docker.network.bridge.name=br-web",
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=false",
    ])
    .expect_ok();
    host.ip(&["link", "show", "br-web"]).expect_ok();
    let net = tests::network(&host, "web");
    assert_eq!(net["Bridge"], "br-web");
    let table = host.nft_table();
    assert!(
        !table.contains("masq_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements"),
        "{table}"
    );
    host.netctl(&["sandbox", "create", "a", "--network", "web"])
        .expect_ok();
    assert!(host.ping("a", "172.30.0.1"));
    // A name taken by another link is refused, with nothing made.
    let err = host
        .netctl(&[
            "network",
            "create",
            "other",
            "-o",
            "com.docker.network.bridge.name=lo",
        ])
        .expect_err();
    assert!(
        err.contains("bridge name lo: a link of that name exists already"),
        "{err}"
    );
    host.netctl(&["network", "rm", "web"]).expect_err();
    host.netctl(&["sandbox", "rm", "a"]).expect_ok();
    host.netctl(&["network", "rm", "web"]).expect_ok();
    assert!(!host.ip(&["link", "show", "br-web"]).ok());
}

#[test]
fn version_completion_and_man_pages() {
    let host = Host::with_daemon();
    let text = host.netctl(&["version"]).expect_ok();
    assert!(text.starts_with("Client:\n Version:"), "{text}");
    assert!(text.contains("\nServer:\n Version:"), "{text}");
    let v = json(&host.netctl(&["version", "--format", "json"]).expect_ok());
    assert_eq!(v["Client"]["ApiVersion"], v["Server"]["ApiVersion"]);
    assert_eq!(v["Client"]["GitCommit"], v["Server"]["GitCommit"]);
    assert!(!v["Client"]["GitCommit"].as_str().unwrap().is_empty());
    // Without a daemon: the client's, and an error.
    let alone = Host::new().netctl(&["version"]);
    assert_eq!(alone.status, 1);
    assert!(alone.stdout.starts_with("Client:"), "{}", alone.stdout);
    for shell in ["bash", "zsh", "fish"] {
        let script = host.netctl(&["completion", shell]).expect_ok();
        assert!(
            script.contains("netctl") && script.contains("sandbox"),
            "{shell}"
        );
    }
    let dir = host.dir().join("man");
    host.netctl(&["man", dir.to_str().unwrap()]).expect_ok();
    let page = std::fs::read_to_string(dir.join("netctl-network-create.1")).unwrap();
    assert!(page.contains("subnet"), "{page}");
    assert!(dir.join("netctl.1").exists());
}
