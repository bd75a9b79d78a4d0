//! Port publishing: DNAT from maps keyed by (address, protocol, port), so a packet costs one
//! lookup and publishing one more port costs one map element, whatever the number published.
//! Each builder's doc comment gives its nft text.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use nftables::expr::{Expression, Fib, FibFlag, FibResult, Map, MetaKey, NamedExpression};
use nftables::schema::{NfListObject, SetType, SetTypeValue};
use nftables::stmt::{JumpTarget, Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainType, NfFamily, NfHook};

use super::table::{self, chain, meta, payload, rule, TABLE};

const CHAIN_PREROUTING: &str = "prerouting";
const CHAIN_OUTPUT: &str = "output";
const CHAIN_PUBLISH: &str = "publish";

/// One published port to one container address: `HOST_IP:HOST_PORT/PROTO → TARGET:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortForward {
    /// `None`: every local address of the target's family.
    pub host_ip: Option<IpAddr>,
    /// `tcp`, `udp` or `sctp`.
    pub proto: &'static str,
    pub host_port: u16,
    pub target: IpAddr,
    pub target_port: u16,
}

/// The four map pairs: specific or any host address, IPv4 or IPv6.
struct MapPair {
    prefix: &'static str,
    v6: bool,
    specific: bool,
}

const MAPS: [MapPair; 4] = [
    MapPair {
        prefix: "pub4",
        v6: false,
        specific: true,
    },
    MapPair {
        prefix: "any4",
        v6: false,
        specific: false,
    },
    MapPair {
        prefix: "pub6",
        v6: true,
        specific: true,
    },
    MapPair {
        prefix: "any6",
        v6: true,
        specific: false,
    },
];

impl MapPair {
    fn for_forward(f: &PortForward) -> &'static MapPair {
        let (v6, specific) = (f.target.is_ipv6(), f.host_ip.is_some());
        MAPS.iter()
            .find(|m| m.v6 == v6 && m.specific == specific)
            .expect("every combination has a map")
    }

    fn key_type(&self) -> SetTypeValue<'static> {
        let addr = if self.v6 {
            SetType::Ipv6Addr
        } else {
            SetType::Ipv4Addr
        };
        let mut key = vec![SetType::InetProto, SetType::InetService];
        if self.specific {
            key.insert(0, addr);
        }
        SetTypeValue::Concatenated(Cow::Owned(key))
    }

    /// The packet's key: `ip daddr . meta l4proto . th dport` or `meta l4proto . th dport`.
    fn packet_key(&self) -> Expression<'static> {
        let mut parts = vec![meta(MetaKey::L4proto), payload("th", "dport")];
        if self.specific {
            parts.insert(0, payload(if self.v6 { "ip6" } else { "ip" }, "daddr"));
        }
        Expression::Named(NamedExpression::Concat(parts))
    }
}

/// `map pub4_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr; }`,
/// `map pub4_port { … : inet_service; }`, and likewise `any4_*` (no address in the key),
/// `pub6_*` and `any6_*`.
pub fn maps() -> Vec<NfListObject<'static>> {
    MAPS.iter()
        .flat_map(|pair| {
            let addr = if pair.v6 {
                SetType::Ipv6Addr
            } else {
                SetType::Ipv4Addr
            };
            [("addr", addr), ("port", SetType::InetService)].map(|(what, value)| {
                NfListObject::Map(Box::new(nftables::schema::Map {
                    family: NfFamily::INet,
                    table: TABLE.into(),
                    name: format!("{}_{what}", pair.prefix).into(),
                    handle: None,
                    set_type: pair.key_type(),
                    map: SetTypeValue::Single(value),
                    policy: None,
                    flags: None,
                    elem: None,
                    timeout: None,
                    gc_interval: None,
                    size: None,
                    comment: None,
                }))
            })
        })
        .collect()
}

/// `chain prerouting { type nat hook prerouting priority dstnat; }`,
/// `chain output { type nat hook output priority dstnat; }`, and the regular chain `publish`.
pub fn chains() -> Vec<NfListObject<'static>> {
    vec![
        chain(
            CHAIN_PREROUTING,
            Some((NfChainType::NAT, NfHook::Prerouting, -100)),
        ),
        chain(CHAIN_OUTPUT, Some((NfChainType::NAT, NfHook::Output, -100))),
        chain(CHAIN_PUBLISH, None),
    ]
}

/// ```text
/// prerouting: fib daddr type local jump publish
/// output:     fib daddr type local jump publish
/// publish:    ip6 daddr ::1 return
///             dnat ip to ip daddr . meta l4proto . th dport map @pub4_addr : ip daddr . meta l4proto . th dport map @pub4_port
///             dnat ip to meta l4proto . th dport map @any4_addr : meta l4proto . th dport map @any4_port
///             (and the same for ip6 with pub6 and any6)
/// ```
/// A key missing from a map ends that rule without a match, so the next one is tried.
pub fn rules() -> Vec<NfListObject<'static>> {
    let to_publish = |chain: &'static str| {
        rule(
            chain,
            vec![
                Statement::Match(Match {
                    left: Expression::Named(NamedExpression::Fib(Fib {
                        result: FibResult::Type,
                        flags: HashSet::from([FibFlag::Daddr]),
                    })),
                    right: Expression::String("local".into()),
                    op: Operator::EQ,
                }),
                Statement::Jump(JumpTarget {
                    target: CHAIN_PUBLISH.into(),
                }),
            ],
        )
    };
    let mut out = vec![to_publish(CHAIN_PREROUTING), to_publish(CHAIN_OUTPUT)];
    // IPv6 loopback traffic cannot be translated to another address (IPv6 has no
    // route_localnet): it is left to the socket netctl holds on the port, which proxies it.
    out.push(rule(
        CHAIN_PUBLISH,
        vec![
            Statement::Match(Match {
                left: payload("ip6", "daddr"),
                right: Expression::String("::1".into()),
                op: Operator::EQ,
            }),
            Statement::Return(None),
        ],
    ));
    for pair in &MAPS {
        let lookup = |what: &str| {
            Some(Expression::Named(NamedExpression::Map(Box::new(Map {
                key: pair.packet_key(),
                data: Expression::String(format!("@{}_{what}", pair.prefix).into()),
            }))))
        };
        out.push(rule(
            CHAIN_PUBLISH,
            vec![Statement::DNAT(Some(NAT {
                addr: lookup("addr"),
                family: Some(if pair.v6 {
                    NATFamily::IP6
                } else {
                    NATFamily::IP
                }),
                port: lookup("port"),
                flags: None,
            }))],
        ));
    }
    out
}

/// `get element inet netctl pub4_addr { 192.0.2.1 . tcp . 8080 }`: finds the forward's
/// element (nft fails when it is missing).
pub fn lookup(f: &PortForward) -> String {
    let pair = MapPair::for_forward(f);
    let host = match f.host_ip {
        Some(ip) => format!("{ip} . "),
        None => String::new(),
    };
    format!(
        "get element inet {} {}_addr {{ {host}{} . {} }}",
        super::table::TABLE,
        pair.prefix,
        f.proto,
        f.host_port
    )
}

/// `element inet netctl pub4_addr { 192.0.2.1 . tcp . 8080 : 172.30.0.2 }` and the matching
/// `pub4_port` element, for each forward.
pub fn elements(forwards: &[PortForward]) -> Vec<NfListObject<'static>> {
    let mut out = Vec::new();
    for f in forwards {
        let pair = MapPair::for_forward(f);
        let mut key = vec![
            Expression::String(f.proto.into()),
            Expression::Number(f.host_port as u32),
        ];
        if let Some(ip) = f.host_ip {
            key.insert(0, Expression::String(ip.to_string().into()));
        }
        let key = Expression::Named(NamedExpression::Concat(key));
        let addr = Expression::String(f.target.to_string().into());
        let port = Expression::Number(f.target_port as u32);
        for (what, value) in [("addr", addr), ("port", port)] {
            let map = format!("{}_{what}", pair.prefix);
            out.push(table::elements(
                map,
                vec![Expression::List(vec![key.clone(), value])],
            ));
        }
    }
    out
}
