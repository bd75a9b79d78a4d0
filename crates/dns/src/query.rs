//! Deciding what to do with one query: answer it from the directory, from the cache, with an
//! error, or hand it to the forwarder.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::cache::Key;
use crate::directory::Local;
use crate::settings::Resolution;
use crate::{wire, Dns};

/// TTL of local answers (Docker's): names change with containers, and the next query must see
/// the change, so clients and forwarders that cache are told not to keep them long.
const LOCAL_TTL: u32 = 600;
/// The UDP payload size we offer with EDNS (the DNS flag day's value).
const OUR_UDP_PAYLOAD: u16 = 1232;

pub enum Reply {
    Now(Vec<u8>),
    Forward(Forward),
    /// Not worth an answer (a response, or too short to carry an ID).
    Drop,
}

/// A query for the forwarder.
pub struct Forward {
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
        let error = |rcode| wire::error_reply(query, rcode).map_or(Reply::Drop, Reply::Now);
        let Ok(msg) = Message::from_vec(query) else {
            return error(wire::FORMERR);
        };
        if msg.metadata.message_type != MessageType::Query {
            return Reply::Drop;
        }
        if msg.metadata.op_code != OpCode::Query {
            return error(wire::NOTIMP);
        }
        let [question] = msg.queries.as_slice() else {
            return error(wire::FORMERR);
        };
        let limit = if tcp {
            usize::from(u16::MAX)
        } else {
            usize::from(msg.max_payload().max(512))
        };
        let Some(view) = self.directory.view(sandbox_id) else {
            return error(wire::REFUSED);
        };
        let name = question.name().to_lowercase();
        let local = match question.query_type() {
            RecordType::A => self.directory.lookup(sandbox_id, &plain(&name), false),
            RecordType::AAAA => self.directory.lookup(sandbox_id, &plain(&name), true),
            RecordType::PTR => match arpa_address(&name) {
                Some(addr) => self.directory.reverse(sandbox_id, addr),
                None => Local::Unknown,
            },
            // A local name has no other records: say so rather than ask the world.
            _ => match self.directory.lookup(sandbox_id, &plain(&name), false) {
                Local::Unknown => Local::Unknown,
                _ => Local::Addresses(Vec::new()),
            },
        };
        if local != Local::Unknown {
            return local_answer(&msg, question, local, limit).map_or_else(
                || error(wire::SERVFAIL),
                Reply::Now,
            );
        }
        if !view.may_forward {
            // Internal networks only: nothing leaves the host, not even a DNS query.
            return error(wire::REFUSED);
        }
        let resolution = view.resolution;
        if name.num_labels() <= 1 && resolution.single_labels_stay_local() {
            return error(wire::NXDOMAIN);
        }
        if resolution.upstreams.is_empty() {
            return error(wire::SERVFAIL);
        }
        let dnssec_ok = msg.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let Some(key) = Key::of(
            query,
            resolution.upstreams_key,
            msg.edns.is_some(),
            dnssec_ok,
        ) else {
            return error(wire::FORMERR);
        };
        if let Some(hit) = self.cache.get(&key, query, limit) {
            return Reply::Now(hit);
        }
        Reply::Forward(Forward {
            key,
            resolution,
            limit,
        })
    }
}

/// `b.web.` → `b.web`.
fn plain(name: &Name) -> String {
    let mut text = name.to_ascii();
    if text.ends_with('.') {
        text.pop();
    }
    text
}

/// The address a `in-addr.arpa`/`ip6.arpa` name stands for, when it names one address.
fn arpa_address(name: &Name) -> Option<IpAddr> {
    let net = name.parse_arpa_name().ok()?;
    (net.prefix_len() == net.max_prefix_len()).then(|| net.addr())
}

fn local_answer(msg: &Message, question: &Query, local: Local, limit: usize) -> Option<Vec<u8>> {
    let mut reply = Message::response(msg.metadata.id, OpCode::Query);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = msg.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(question.clone());
    let owner = question.name().clone();
    match local {
        Local::Addresses(addrs) => {
            for addr in addrs {
                let data = match addr {
                    IpAddr::V4(a) => RData::A(A(a)),
                    IpAddr::V6(a) => RData::AAAA(AAAA(a)),
                };
                reply.add_answer(Record::from_rdata(owner.clone(), LOCAL_TTL, data));
            }
        }
        Local::Pointer(target) => {
            let target = Name::from_ascii(format!("{target}.")).ok()?;
            reply.add_answer(Record::from_rdata(owner, LOCAL_TTL, RData::PTR(PTR(target))));
        }
        Local::Unknown => return None,
    }
    if msg.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(OUR_UDP_PAYLOAD);
        reply.set_edns(edns);
    }
    let mut bytes = reply.to_vec().ok()?;
    // Too many holders of one name for the client's buffer: as many as fit, and TC so that
    // it can ask again over TCP for all of them.
    if bytes.len() > limit {
        let fit = reply.answers.len() * limit / bytes.len();
        reply.answers.truncate(fit);
        reply.metadata.truncation = true;
        bytes = reply.to_vec().ok()?;
    }
    while bytes.len() > limit && !reply.answers.is_empty() {
        reply.answers.pop();
        reply.metadata.truncation = true;
        bytes = reply.to_vec().ok()?;
    }
    Some(bytes)
}
