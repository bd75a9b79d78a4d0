//! Roles on the management API: every route checked for every role, and the CLI run by
//! users and groups a test made, each getting what its role allows and nothing else.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use netctl_daemon::front::ManagementApi;
use netctl_netns_fixtures::{netctl_bin, with_private_etc, Host, Output};
use netctl_plugin_api::access::Role;
use netctl_plugin_api::management::routes;
use tests::as_user::{request_as, Credentials};

/// The socket's group in these tests.
const API_GROUP: u32 = 4100;

fn user(uid: u32, groups: &[u32]) -> Credentials {
    Credentials {
        uid,
        gid: uid,
        groups: groups.to_vec(),
    }
}

/// Lets users other than root reach the socket file (the test's scratch directory is
/// root's alone).
fn open_the_way_to(host: &Host) {
    std::fs::set_permissions(host.dir(), std::fs::Permissions::from_mode(0o711)).unwrap();
}

#[test]
fn every_route_refuses_exactly_the_roles_that_lack_its_permission() {
    let mut host = Host::new();
    // By numeric id; the scheduler through a supplementary group.
    host.set_config(&format!(
        r#"{{"group": "{API_GROUP}",
            "roles": {{"users": {{"4001": "view", "4002": "restricted", "4004": "full"}},
                       "groups": {{"4103": "scheduler"}}}}}}"#
    ));
    host.start_daemon();
    open_the_way_to(&host);
    let callers = [
        (Role::None, user(4000, &[API_GROUP])),
        (Role::View, user(4001, &[API_GROUP])),
        (Role::Restricted, user(4002, &[API_GROUP])),
        (Role::Scheduler, user(4003, &[API_GROUP, 4103])),
        (Role::Full, user(4004, &[API_GROUP])),
        (Role::Full, user(0, &[])),
    ];
    let (networks, kernel) = (
        host.netctl(&["network", "ls"]).expect_ok(),
        host.kernel_snapshot(),
    );
    let routes = routes::<ManagementApi>();
    assert!(routes.len() >= 37, "every route: {}", routes.len());
    for route in &routes {
        // Names that do not exist and a body that does not decode: an allowed request is
        // answered by its handler (an error, but not a refusal) and changes nothing.
        let path = route
            .path
            .replace("{name}", "nosuch")
            .replace("{node}", "nosuch");
        for (role, who) in &callers {
            let answer = request_as(who, &host.socket(), route.method.as_str(), &path, "null")
                .unwrap_or_else(|e| panic!("{} {path} as {who:?}: {e}", route.method));
            let allowed = role.allows(route.rule.needs);
            assert_eq!(
                answer.status != 403,
                allowed,
                "{} {path} as {role} (uid {}): {answer:?}",
                route.method,
                who.uid
            );
            if !allowed {
                let refusal = format!("permission denied: role {role} cannot {}", route.rule.what);
                assert!(answer.body.contains(&refusal), "{refusal}: {answer:?}");
            }
        }
    }
    // Whoever reaches the socket may ask whether it serves.
    let ping = request_as(&callers[0].1, &host.socket(), "GET", "/_ping", "").unwrap();
    assert_eq!((ping.status, ping.body.as_str()), (200, "OK"));
    // Outside the socket's group, the kernel refuses before the daemon hears anything.
    let outsider = request_as(&user(4009, &[]), &host.socket(), "GET", "/v1/networks", "");
    assert_eq!(
        outsider.unwrap_err().kind(),
        std::io::ErrorKind::PermissionDenied
    );
    assert_eq!(host.netctl(&["network", "ls"]).expect_ok(), networks);
    assert_eq!(host.kernel_snapshot(), kernel);
}

/// `netctl ARGS` as the user `name`, with its groups.
fn netctl_as(host: &Host, name: &str, args: &[&str]) -> Output {
    let (socket, netctl) = (host.socket(), netctl_bin());
    let mut all = vec![
        "--reuid",
        name,
        "--regid",
        name,
        "--init-groups",
        "--",
        netctl.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    netctl_netns_fixtures::run("setpriv", &all)
}

/// One command of each kind, and whether it passed the access check (it may still fail
/// for its own reasons: there is no cluster to list nodes of).
fn passes(out: &Output) -> bool {
    !out.stderr.contains("permission denied")
}

#[test]
fn users_and_groups_made_by_the_test_get_what_their_roles_allow_from_the_cli() {
    with_private_etc(|etc| {
        etc.groupadd("netops", 4200);
        etc.groupadd("schedulers", 4203);
        etc.useradd("viewer", 4201, &["netops"]);
        etc.useradd("netadmin", 4202, &["netops"]);
        etc.useradd("sched", 4203 + 10, &["netops", "schedulers"]);
        etc.useradd("admin", 4204, &["netops"]);
        etc.useradd("guest", 4205, &["netops"]);
        etc.useradd("outsider", 4206, &[]);
        let mut host = Host::new();
        host.set_config(
            r#"{"group": "netops",
                "roles": {"users": {"viewer": "view", "netadmin": "restricted", "admin": "full"},
                          "groups": {"schedulers": "scheduler"}}}"#,
        );
        host.start_daemon();
        open_the_way_to(&host);
        let socket = std::fs::metadata(host.socket()).unwrap();
        assert_eq!((socket.gid(), socket.mode() & 0o777), (4200, 0o660));
        host.netctl(&["network", "create", "base", "--subnet", "10.77.0.0/24"])
            .expect_ok();
        let before = host.netctl(&["network", "ls"]).expect_ok();

        // user, role, and whether it may: read, change networks, attach, see nodes, admin
        let table = [
            ("guest", "none", [false, false, false, false, false]),
            ("viewer", "view", [true, false, false, false, false]),
            ("netadmin", "restricted", [true, true, false, false, false]),
            ("sched", "scheduler", [true, false, true, true, false]),
            ("admin", "full", [true, true, true, true, true]),
        ];
        for (name, role, may) in table {
            let read = netctl_as(&host, name, &["network", "ls"]);
            assert_eq!(passes(&read), may[0], "{name} network ls: {read:?}");
            if !may[0] {
                assert_eq!(read.status, 1);
                assert_eq!(
                    read.stderr.trim(),
                    format!("netctl: permission denied: role {role} cannot list networks")
                );
            }
            let network = format!("by-{name}");
            let create = netctl_as(&host, name, &["network", "create", &network]);
            assert_eq!(passes(&create), may[1], "{name} network create: {create:?}");
            if may[1] {
                create.expect_ok();
                netctl_as(&host, name, &["network", "rm", &network]).expect_ok();
            } else {
                assert_eq!(
                    create.stderr.trim(),
                    format!("netctl: permission denied: role {role} cannot create networks")
                );
            }
            let sandbox = format!("sb-{name}");
            let attach = netctl_as(
                &host,
                name,
                &["sandbox", "create", &sandbox, "--network", "base"],
            );
            assert_eq!(passes(&attach), may[2], "{name} sandbox create: {attach:?}");
            if may[2] {
                attach.expect_ok();
                netctl_as(&host, name, &["sandbox", "rm", &sandbox]).expect_ok();
            }
            let nodes = netctl_as(&host, name, &["node", "ls"]);
            assert_eq!(passes(&nodes), may[3], "{name} node ls: {nodes:?}");
            let admin = netctl_as(&host, name, &["firewall", "reload"]);
            assert_eq!(passes(&admin), may[4], "{name} firewall reload: {admin:?}");
            if may[4] {
                admin.expect_ok();
            }
            // What a refusal left: exactly what there was.
            assert_eq!(
                host.netctl(&["network", "ls"]).expect_ok(),
                before,
                "{name}"
            );
            assert_eq!(
                host.netctl(&["sandbox", "ls", "--format", "{{.Name}}"])
                    .expect_ok()
                    .trim(),
                ""
            );
        }
        let outsider = netctl_as(&host, "outsider", &["network", "ls"]);
        assert!(
            outsider.stderr.contains("Permission denied")
                && outsider.stderr.contains("socket's group"),
            "{outsider:?}"
        );
    });
}
