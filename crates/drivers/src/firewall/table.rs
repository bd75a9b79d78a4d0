//! netctl's nft table, `inet netctl`: a fixed set of rules over sets, so that the rule count
//! never grows with networks or containers. Each builder's doc comment gives its nft text.

use std::borrow::Cow;
use std::collections::HashSet;

use ipnetwork::IpNetwork;
use nftables::expr::{
    Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix, CT,
};
use nftables::schema::{
    Chain, Element, NfListObject, Rule, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

pub const TABLE: &str = "netctl";
/// The user's own table: created if missing, never flushed or deleted by netctl.
pub const USER_TABLE: &str = "netctl-user";

pub const SET_BRIDGES: &str = "bridges";
pub const SET_ICC_PAIRS: &str = "icc_pairs";
pub const SET_INTERNAL: &str = "internal_bridges";
pub const SET_MASQ_V4: &str = "masq_v4";
pub const SET_MASQ_V6: &str = "masq_v6";
/// Every non-internal subnet, masqueraded or not: hairpin traffic is recognised by them.
pub const SET_HAIRPIN_V4: &str = "hairpin_v4";
pub const SET_HAIRPIN_V6: &str = "hairpin_v6";

const CHAIN_FORWARD: &str = "forward";
const CHAIN_POSTROUTING: &str = "postrouting";

/// `table inet netctl`
pub fn table() -> NfListObject<'static> {
    NfListObject::Table(Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    })
}

/// `table inet netctl-user { chain forward { type filter hook forward priority filter - 10;
/// policy accept; } }`: the user's policy, seen before netctl's rules. `add` leaves the
/// chain's rules as they are.
pub fn user_table() -> Vec<NfListObject<'static>> {
    vec![
        NfListObject::Table(Table {
            family: NfFamily::INet,
            name: USER_TABLE.into(),
            handle: None,
        }),
        NfListObject::Chain(Chain {
            family: NfFamily::INet,
            table: USER_TABLE.into(),
            name: CHAIN_FORWARD.into(),
            newname: None,
            handle: None,
            _type: Some(NfChainType::Filter),
            hook: Some(NfHook::Forward),
            prio: Some(-10),
            dev: None,
            policy: Some(NfChainPolicy::Accept),
        }),
    ]
}

/// `chain forward { type filter hook forward priority filter; policy accept; }` and
/// `chain postrouting { type nat hook postrouting priority srcnat; policy accept; }`
pub fn chains() -> Vec<NfListObject<'static>> {
    vec![
        chain(
            CHAIN_FORWARD,
            Some((NfChainType::Filter, NfHook::Forward, 0)),
        ),
        chain(
            CHAIN_POSTROUTING,
            Some((NfChainType::NAT, NfHook::Postrouting, 100)),
        ),
    ]
}

/// `set bridges { type ifname; }`, `set icc_pairs { type ifname . ifname; }`,
/// `set internal_bridges { type ifname; }`,
/// `set masq_v4 { type ipv4_addr; flags interval; }`, `set masq_v6 { type ipv6_addr; flags interval; }`,
/// and `hairpin_v4`, `hairpin_v6` alike
pub fn sets() -> Vec<NfListObject<'static>> {
    let single = |t| SetTypeValue::Single(t);
    [
        (SET_BRIDGES, single(SetType::Ifname), false),
        (
            SET_ICC_PAIRS,
            SetTypeValue::Concatenated(Cow::Owned(vec![SetType::Ifname, SetType::Ifname])),
            false,
        ),
        (SET_INTERNAL, single(SetType::Ifname), false),
        (SET_MASQ_V4, single(SetType::Ipv4Addr), true),
        (SET_MASQ_V6, single(SetType::Ipv6Addr), true),
        (SET_HAIRPIN_V4, single(SetType::Ipv4Addr), true),
        (SET_HAIRPIN_V6, single(SetType::Ipv6Addr), true),
    ]
    .into_iter()
    .map(|(name, set_type, interval)| {
        NfListObject::Set(Box::new(Set {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: name.into(),
            handle: None,
            set_type,
            policy: None,
            flags: interval.then(|| HashSet::from([SetFlag::Interval])),
            elem: None,
            timeout: None,
            gc_interval: None,
            size: None,
            comment: None,
        }))
    })
    .collect()
}

/// The forward chain, in order:
/// ```text
/// oifname @bridges ct status dnat accept                                 # published ports
/// iifname @bridges oifname @bridges iifname . oifname @icc_pairs accept   # same bridge, ICC on
/// iifname @bridges oifname @bridges drop                                 # other bridge, or ICC off
/// iifname @internal_bridges drop
/// oifname @internal_bridges drop
/// oifname @bridges ct state established,related accept
/// oifname @bridges drop                                                  # nothing unsolicited in
/// iifname @bridges accept
/// ```
/// and the postrouting chain:
/// ```text
/// ip saddr @masq_v4 oifname != @bridges masquerade
/// ip6 saddr @masq_v6 oifname != @bridges masquerade
/// ct status dnat ip saddr @hairpin_v4 oifname @bridges masquerade   # hairpin: a container
/// ct status dnat ip6 saddr @hairpin_v6 oifname @bridges masquerade  # calling a published port
/// ct status dnat ip saddr 127.0.0.0/8 masquerade             # published ports reached via localhost
/// ```
pub fn rules() -> Vec<NfListObject<'static>> {
    let between_bridges = || {
        vec![
            in_set(meta(MetaKey::Iifname), SET_BRIDGES),
            in_set(meta(MetaKey::Oifname), SET_BRIDGES),
        ]
    };
    let forward: Vec<Vec<Statement<'static>>> = vec![
        vec![
            in_set(meta(MetaKey::Oifname), SET_BRIDGES),
            ct_status_dnat(),
            accept(),
        ],
        [
            between_bridges(),
            vec![in_set(concat_iif_oif(), SET_ICC_PAIRS), accept()],
        ]
        .concat(),
        [between_bridges(), vec![drop()]].concat(),
        vec![in_set(meta(MetaKey::Iifname), SET_INTERNAL), drop()],
        vec![in_set(meta(MetaKey::Oifname), SET_INTERNAL), drop()],
        vec![
            in_set(meta(MetaKey::Oifname), SET_BRIDGES),
            Statement::Match(Match {
                left: Expression::Named(NamedExpression::CT(CT {
                    key: "state".into(),
                    family: None,
                    dir: None,
                })),
                right: Expression::List(vec![str_expr("established"), str_expr("related")]),
                op: Operator::IN,
            }),
            accept(),
        ],
        vec![in_set(meta(MetaKey::Oifname), SET_BRIDGES), drop()],
        vec![in_set(meta(MetaKey::Iifname), SET_BRIDGES), accept()],
    ];
    let mut postrouting: Vec<Vec<Statement<'static>>> = [("ip", SET_MASQ_V4), ("ip6", SET_MASQ_V6)]
        .into_iter()
        .map(|(proto, set)| {
            vec![
                in_set(payload(proto, "saddr"), set),
                Statement::Match(Match {
                    left: meta(MetaKey::Oifname),
                    right: str_expr(&format!("@{SET_BRIDGES}")),
                    op: Operator::NEQ,
                }),
                Statement::Masquerade(None),
            ]
        })
        .collect();
    // The input interface is not known in postrouting, so hairpin traffic is recognised by
    // its source: a container subnet, translated back into a bridge.
    for (proto, set) in [("ip", SET_HAIRPIN_V4), ("ip6", SET_HAIRPIN_V6)] {
        postrouting.push(vec![
            ct_status_dnat(),
            in_set(payload(proto, "saddr"), set),
            in_set(meta(MetaKey::Oifname), SET_BRIDGES),
            Statement::Masquerade(None),
        ]);
    }
    postrouting.push(vec![
        ct_status_dnat(),
        Statement::Match(Match {
            left: payload("ip", "saddr"),
            right: Expression::Named(NamedExpression::Prefix(Prefix {
                addr: Box::new(str_expr("127.0.0.0")),
                len: 8,
            })),
            op: Operator::EQ,
        }),
        Statement::Masquerade(None),
    ]);
    let chain_rules = |chain: &'static str, rules: Vec<Vec<Statement<'static>>>| {
        rules.into_iter().map(move |expr| rule(chain, expr))
    };
    chain_rules(CHAIN_FORWARD, forward)
        .chain(chain_rules(CHAIN_POSTROUTING, postrouting))
        .collect()
}

/// `element inet netctl SET { ELEMENTS }`
pub fn elements(
    set: impl Into<Cow<'static, str>>,
    elements: Vec<Expression<'static>>,
) -> NfListObject<'static> {
    NfListObject::Element(Element {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: set.into(),
        elem: elements.into(),
    })
}

pub fn ifname(name: &str) -> Expression<'static> {
    str_expr(name)
}

/// `NAME . NAME`
pub fn ifname_pair(a: &str, b: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(vec![str_expr(a), str_expr(b)]))
}

/// `ADDRESS/PREFIX`
pub fn prefix(net: &IpNetwork) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(str_expr(&net.network().to_string())),
        len: net.prefix() as u32,
    }))
}

fn str_expr(s: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(s.to_string()))
}

/// `add rule inet netctl CHAIN EXPR`
pub(super) fn rule(chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: chain.into(),
        expr: expr.into(),
        handle: None,
        index: None,
        comment: None,
    })
}

/// `chain inet netctl NAME`, a base chain when `hook` is given.
pub(super) fn chain(
    name: &'static str,
    hook: Option<(NfChainType, NfHook, i32)>,
) -> NfListObject<'static> {
    NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        newname: None,
        handle: None,
        _type: hook.map(|h| h.0),
        hook: hook.map(|h| h.1),
        prio: hook.map(|h| h.2),
        dev: None,
        policy: hook.map(|_| NfChainPolicy::Accept),
    })
}

pub(super) fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

pub(super) fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn concat_iif_oif() -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(vec![
        meta(MetaKey::Iifname),
        meta(MetaKey::Oifname),
    ]))
}

/// `LEFT @SET`
fn in_set(left: Expression<'static>, set: &str) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right: str_expr(&format!("@{set}")),
        op: Operator::EQ,
    })
}

/// `ct status dnat`
fn ct_status_dnat() -> Statement<'static> {
    Statement::Match(Match {
        left: Expression::Named(NamedExpression::CT(CT {
            key: "status".into(),
            family: None,
            dir: None,
        })),
        right: str_expr("dnat"),
        op: Operator::IN,
    })
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop() -> Statement<'static> {
    Statement::Drop(None)
}
