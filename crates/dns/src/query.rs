//! Deciding what to do with one query: answer it from the directory, from the cache, with an
//! error, or hand it to the forwarder.
//!
//! Nearly every query a stub resolver sends has one shape (one question, at most an OPT
//! record); those are read straight from the wire. Anything else is decoded by hickory-proto,
//! which also tells a malformed message (FORMERR) from an odd but valid one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode};

use crate::cache::Key;
use crate::directory::Local;
use crate::settings::Resolution;
use crate::wire::{self, Asked};
use crate::Dns;

/// TTL of local answers (Docker's): names change with containers, and the next query must see
/// the change, so clients and forwarders that cache are told not to keep them long.
const LOCAL_TTL: u32 = 600;
/// The UDP payload size we offer with EDNS (the DNS flag day's value).
const OUR_UDP_PAYLOAD: u16 = 1232;

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;

pub enum Reply {
    Now(Vec<u8>),
    Forward(Forward),
    /// Not worth an answer (a response, or too short to carry an ID).
    Drop,
}

/// A query for the forwarder.
pub struct Forward {
    /// The asking sandbox, for the log.
    pub sandbox: Arc<str>,
    pub key: Key,
    pub resolution: Arc<Resolution>,
    /// Largest answer the client takes over this transport.
    pub limit: usize,
}

impl Dns {
    /// `tcp`: the query came over TCP (no size limit but the 16-bit length).
    pub fn answer(&self, sandbox_id: &str, query: &[u8], tcp: bool) -> Reply {
        if query.len() < wire::HEADER_LEN || wire::is_response(query) {
            return Reply::Drop;
        }
        match wire::plain_query(query).map_or_else(|| decode(query), Ok) {
            Ok(asked) => self.decide(sandbox_id, query, &asked, tcp),
            Err(reply) => reply,
        }
    }

    fn decide(&self, sandbox_id: &str, query: &[u8], asked: &Asked, tcp: bool) -> Reply {
        let error = |rcode| wire::error_reply(query, rcode).map_or(Reply::Drop, Reply::Now);
        let limit = if tcp {
            usize::from(u16::MAX)
        } else {
            usize::from(asked.edns.map_or(512, |e| e.payload.max(512)))
        };
        let Some(view) = self.directory.view(sandbox_id) else {
            return error(wire::REFUSED);
        };
        let local = match asked.qtype {
            TYPE_A => self.directory.lookup(sandbox_id, &asked.name, false),
            TYPE_AAAA => self.directory.lookup(sandbox_id, &asked.name, true),
            TYPE_PTR => match arpa_address(&asked.name) {
                Some(addr) => self.directory.reverse(sandbox_id, addr),
                None => Local::Unknown,
            },
            // A local name has no other records: say so rather than ask the world.
            _ => match self.directory.lookup(sandbox_id, &asked.name, false) {
                Local::Unknown => Local::Unknown,
                _ => Local::Addresses(Vec::new()),
            },
        };
        if local != Local::Unknown {
            return Reply::Now(local_answer(query, asked, &local, limit));
        }
        if !view.may_forward {
            // Internal networks only: nothing leaves the host, not even a DNS query.
            return error(wire::REFUSED);
        }
        let resolution = view.resolution;
        if !asked.name.contains('.') && resolution.single_labels_stay_local() {
            return error(wire::NXDOMAIN);
        }
        if resolution.upstreams.is_empty() {
            tracing::debug!(sandbox = sandbox_id, name = %asked.name, upstreams_from = ?resolution.upstreams_from, unusable = ?resolution.unusable, "SERVFAIL: no upstream to forward to");
            return error(wire::SERVFAIL);
        }
        let edns = asked.edns.is_some();
        let dnssec_ok = asked.edns.is_some_and(|e| e.dnssec_ok);
        let Some(key) = Key::of(query, resolution.upstreams_key, edns, dnssec_ok) else {
            return error(wire::FORMERR);
        };
        if let Some(hit) = self.cache.get(&key, query, limit) {
            metrics::counter!("netctl_dns_cache_hits_total").increment(1);
            return Reply::Now(hit);
        }
        Reply::Forward(Forward {
            sandbox: sandbox_id.into(),
            key,
            resolution,
            limit,
        })
    }
}

/// The slow path: hickory-proto decodes what the wire reader declined.
fn decode(query: &[u8]) -> Result<Asked, Reply> {
    let error = |rcode| wire::error_reply(query, rcode).map_or(Reply::Drop, Reply::Now);
    let Ok(msg) = Message::from_vec(query) else {
        return Err(error(wire::FORMERR));
    };
    if msg.metadata.message_type != MessageType::Query {
        return Err(Reply::Drop);
    }
    if msg.metadata.op_code != OpCode::Query {
        return Err(error(wire::NOTIMP));
    }
    // One question, in place at the start (answers repeat it byte for byte).
    let ([question], Some(_)) = (msg.queries.as_slice(), wire::question(query)) else {
        return Err(error(wire::FORMERR));
    };
    let mut name = question.name().to_lowercase().to_ascii();
    if name.len() > 1 && name.ends_with('.') {
        name.pop();
    }
    Ok(Asked {
        name,
        qtype: question.query_type().into(),
        edns: msg.edns.as_ref().map(|e| wire::EdnsInfo {
            payload: e.max_payload(),
            dnssec_ok: e.flags().dnssec_ok,
        }),
    })
}

/// The address an `in-addr.arpa`/`ip6.arpa` name stands for, when it names one address.
fn arpa_address(name: &str) -> Option<IpAddr> {
    if let Some(v4) = name.strip_suffix(".in-addr.arpa") {
        let mut octets: Vec<u8> = v4
            .split('.')
            .map(|o| o.parse().ok())
            .collect::<Option<_>>()?;
        octets.reverse();
        let octets: [u8; 4] = octets.try_into().ok()?;
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    let v6 = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = v6
        .split('.')
        .rev()
        .map(|n| u8::from_str_radix(n, 16).ok().filter(|_| n.len() == 1))
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(nibbles.chunks(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    Some(IpAddr::V6(Ipv6Addr::from(bytes)))
}

/// An authoritative answer built on the query's own header and question; the records point
/// back at the question's name (compression pointer 0xc00c).
fn local_answer(query: &[u8], asked: &Asked, local: &Local, limit: usize) -> Vec<u8> {
    let question = wire::question(query).unwrap_or_default();
    let records: Vec<Vec<u8>> = match local {
        Local::Addresses(addrs) => addrs.iter().map(|a| address_record(*a)).collect(),
        Local::Pointer(target) => vec![pointer_record(target)],
        Local::Unknown => Vec::new(),
    };
    let opt: &[u8] = if asked.edns.is_some() {
        // Root name, OPT, our payload size, no extended code, version 0, no flags, no data.
        let p = OUR_UDP_PAYLOAD.to_be_bytes();
        &[0, 0, 41, p[0], p[1], 0, 0, 0, 0, 0, 0]
    } else {
        &[]
    };
    let fixed = wire::HEADER_LEN + question.len() + opt.len();
    // As many records as fit the client's buffer; TC tells it to ask over TCP for the rest.
    let mut fit = 0;
    let mut size = fixed;
    for record in &records {
        if size + record.len() > limit {
            break;
        }
        size += record.len();
        fit += 1;
    }
    let truncated = fit < records.len();
    let mut reply = Vec::with_capacity(size);
    reply.extend_from_slice(&query[..2]);
    // QR, AA, the query's RD (and TC); RA, NOERROR.
    reply.push(0x84 | (query[2] & 0x01) | if truncated { 0x02 } else { 0 });
    reply.push(0x80);
    reply.extend_from_slice(&[0, 1]);
    reply.extend_from_slice(&(fit as u16).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, u8::from(!opt.is_empty())]);
    reply.extend_from_slice(question);
    records[..fit]
        .iter()
        .for_each(|r| reply.extend_from_slice(r));
    reply.extend_from_slice(opt);
    reply
}

fn record(rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(12 + rdata.len());
    r.extend_from_slice(&[0xc0, 0x0c]);
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&LOCAL_TTL.to_be_bytes());
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(rdata);
    r
}

fn address_record(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => record(TYPE_A, &a.octets()),
        IpAddr::V6(a) => record(TYPE_AAAA, &a.octets()),
    }
}

/// `b.web` → PTR `b.web.` (labels are sandbox and network names: short, plain).
fn pointer_record(target: &str) -> Vec<u8> {
    let mut name = Vec::with_capacity(target.len() + 2);
    for label in target.split('.').filter(|l| !l.is_empty()) {
        name.push(label.len().min(63) as u8);
        name.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    name.push(0);
    record(TYPE_PTR, &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{RData, RecordType};

    fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        if edns {
            q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
        }
        q
    }

    fn asked(q: &[u8]) -> Asked {
        wire::plain_query(q).expect("a plain query")
    }

    #[test]
    fn local_answers_are_valid_dns_messages() {
        let q = query("Api", TYPE_A, true);
        let addrs = Local::Addresses(vec![
            "10.0.0.3".parse().unwrap(),
            "10.0.0.4".parse().unwrap(),
        ]);
        let answer = local_answer(&q, &asked(&q), &addrs, 1232);
        let msg = Message::from_vec(&answer).unwrap();
        assert!(msg.metadata.authoritative && msg.metadata.recursion_desired);
        assert_eq!(msg.queries[0].name().to_ascii(), "Api.");
        assert_eq!(msg.answers.len(), 2);
        assert_eq!(msg.answers[0].ttl, LOCAL_TTL);
        assert!(matches!(msg.answers[1].data, RData::A(a) if a.0 == Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!(msg.edns.unwrap().max_payload(), OUR_UDP_PAYLOAD);

        let q = query("3.0.0.10.in-addr.arpa", TYPE_PTR, false);
        let answer = local_answer(&q, &asked(&q), &Local::Pointer("b.web".into()), 512);
        let msg = Message::from_vec(&answer).unwrap();
        assert_eq!(msg.answers[0].record_type(), RecordType::PTR);
        assert!(msg.answers[0].data.to_string().starts_with("b.web."));
        assert!(msg.edns.is_none());
    }

    #[test]
    fn too_many_records_for_the_buffer_set_tc() {
        let q = query("many", TYPE_AAAA, false);
        let addrs: Vec<IpAddr> = (0..40u16)
            .map(|i| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i)))
            .collect();
        let answer = local_answer(&q, &asked(&q), &Local::Addresses(addrs), 512);
        assert!(answer.len() <= 512);
        let msg = Message::from_vec(&answer).unwrap();
        assert!(msg.metadata.truncation);
        assert_eq!(msg.answers.len(), (512 - 12 - 10) / 28);
    }

    #[test]
    fn arpa_names_give_back_their_address() {
        assert_eq!(
            arpa_address("3.0.30.172.in-addr.arpa"),
            Some("172.30.0.3".parse().unwrap())
        );
        let v6 = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(arpa_address(v6), Some("fd00:30::3".parse().unwrap()));
        assert_eq!(arpa_address("0.30.172.in-addr.arpa"), None);
        assert_eq!(arpa_address("300.0.30.172.in-addr.arpa"), None);
        assert_eq!(arpa_address("b.web"), None);
    }
}
