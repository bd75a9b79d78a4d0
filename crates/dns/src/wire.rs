//! What the forwarder and the cache need from raw DNS messages without decoding them
//! whole: the header fields, the question, and where each record's TTL sits (RFC 1035 §4.1).
//! Decoding and encoding whole messages is hickory-proto's job; these helpers only look.

/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;
const TYPE_OPT: u16 = 41;
const TYPE_SOA: u16 = 6;

pub fn id(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[0], msg[1]])
}

pub fn set_id(msg: &mut [u8], id: u16) {
    msg[..2].copy_from_slice(&id.to_be_bytes());
}

pub fn is_response(msg: &[u8]) -> bool {
    msg[2] & 0x80 != 0
}

pub fn is_truncated(msg: &[u8]) -> bool {
    msg[2] & 0x02 != 0
}

pub fn rcode(msg: &[u8]) -> u8 {
    msg[3] & 0x0f
}

fn count(msg: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([msg[at], msg[at + 1]]))
}

/// Skips a possibly compressed name starting at `at`; returns the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(len),
            // A pointer ends the name where it stands.
            0xc0 => return (at + 2 <= msg.len()).then_some(at + 2),
            _ => return None,
        }
    }
}

/// The question section's bytes (name, type, class) of a one-question message, which replies
/// repeat byte for byte. Its name must be labels only: the first name of a message has no
/// earlier name to point to, so a compression pointer there is malformed, and repeated it
/// would make the reply malformed too (found by fuzzing).
pub fn question(msg: &[u8]) -> Option<&[u8]> {
    if msg.len() < HEADER_LEN || count(msg, 4) != 1 {
        return None;
    }
    let end = skip_labels(msg, HEADER_LEN)? + 4;
    msg.get(HEADER_LEN..end)
}

/// Where an uncompressed name starting at `at` ends; `None` past RFC 1035's 255 octets too.
fn skip_labels(msg: &[u8], start: usize) -> Option<usize> {
    let mut at = start;
    loop {
        match *msg.get(at)? {
            0 => return (at + 1 - start <= MAX_NAME).then_some(at + 1),
            len if len & 0xc0 == 0 => at += 1 + usize::from(len),
            _ => return None,
        }
    }
}

/// The longest name, in octets on the wire (RFC 1035, 3.1).
const MAX_NAME: usize = 255;

/// Same question, letter case aside (resolvers randomise it, RFC 7766's "0x20").
pub fn same_question(a: &[u8], b: &[u8]) -> bool {
    matches!((question(a), question(b)), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y))
}

/// Where the TTLs of a message are, and how long it may be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlMap {
    /// Offsets of every record's TTL field (the OPT pseudo-record's is not a TTL).
    pub offsets: Vec<usize>,
    /// Seconds the answer stays valid: the smallest TTL, or for a negative answer the SOA's
    /// TTL capped by its MINIMUM field (RFC 2308 §5). `None`: not cacheable.
    pub lifetime: Option<u32>,
}

/// Walks a response's records. `None` when the message is malformed.
pub fn ttl_map(msg: &[u8]) -> Option<TtlMap> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    let mut at = HEADER_LEN;
    for _ in 0..count(msg, 4) {
        at = skip_name(msg, at)? + 4;
    }
    let answers = count(msg, 6);
    let records = answers + count(msg, 8) + count(msg, 10);
    let mut offsets = Vec::with_capacity(records);
    let mut smallest: Option<u32> = None;
    let mut negative: Option<u32> = None;
    for index in 0..records {
        at = skip_name(msg, at)?;
        let fixed = msg.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let rdata_end = at + 10 + rdlen;
        if rdata_end > msg.len() {
            return None;
        }
        if rtype != TYPE_OPT {
            offsets.push(at + 4);
            smallest = Some(smallest.map_or(ttl, |s| s.min(ttl)));
            if rtype == TYPE_SOA && index >= answers && rdlen >= 4 {
                let m = &msg[rdata_end - 4..rdata_end];
                negative = Some(ttl.min(u32::from_be_bytes([m[0], m[1], m[2], m[3]])));
            }
        }
        at = rdata_end;
    }
    let rcode = rcode(msg);
    let lifetime = match (rcode, answers) {
        // NOERROR with answers: the smallest TTL of what it carries.
        (0, 1..) => smallest,
        // NXDOMAIN, or NOERROR without answers (NODATA): only with an SOA to say how long.
        (0 | 3, 0) => negative,
        _ => None,
    };
    Some(TtlMap { offsets, lifetime })
}

/// Lowers every TTL by `elapsed` seconds.
pub fn age(msg: &mut [u8], offsets: &[usize], elapsed: u32) {
    for &at in offsets {
        let ttl = u32::from_be_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
        msg[at..at + 4].copy_from_slice(&ttl.saturating_sub(elapsed).to_be_bytes());
    }
}

/// A header-and-question answer with `rcode`, for when nothing better can be said: SERVFAIL
/// when upstreams fail, REFUSED when forwarding is not allowed, FORMERR for a question that
/// cannot be read. `None` when the query is too short to carry an ID worth answering.
pub fn error_reply(query: &[u8], rcode: u8) -> Option<Vec<u8>> {
    if query.len() < HEADER_LEN {
        return None;
    }
    let question = question(query);
    let mut reply = Vec::with_capacity(HEADER_LEN + question.map_or(0, <[u8]>::len));
    reply.extend_from_slice(&query[..4]);
    // QR, the query's opcode and RD; RA; the code.
    reply[2] = 0x80 | (query[2] & 0x79);
    reply[3] = 0x80 | rcode;
    let qdcount: u16 = question.is_some().into();
    reply.extend_from_slice(&qdcount.to_be_bytes());
    reply.extend_from_slice(&[0; 6]);
    if let Some(q) = question {
        reply.extend_from_slice(q);
    }
    Some(reply)
}

/// What a query asks, as far as answering it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// Lower case, dot-separated, without the final dot ("." for the root).
    pub name: String,
    pub qtype: u16,
    pub edns: Option<EdnsInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdnsInfo {
    /// The client's UDP buffer.
    pub payload: u16,
    pub dnssec_ok: bool,
}

/// Reads a query of the usual shape: QUERY opcode, one question in class IN whose labels are
/// letters, digits, `-` and `_`, no answer or authority records, and at most one additional
/// record, an OPT. `None` for anything else, which then takes the general decoder.
pub fn plain_query(msg: &[u8]) -> Option<Asked> {
    let header = msg.get(..HEADER_LEN)?;
    let counts_ok = header[4..10] == [0, 1, 0, 0, 0, 0] && header[10] == 0 && header[11] <= 1;
    if is_response(msg) || header[2] & 0x78 != 0 || !counts_ok {
        return None;
    }
    let mut name = String::with_capacity(32);
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*msg.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        let label = msg.get(at..at + len).filter(|_| len <= 63)?;
        let plain = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
        if !label.iter().all(plain) {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.extend(label.iter().map(|b| b.to_ascii_lowercase() as char));
        at += len;
    }
    if at - HEADER_LEN > MAX_NAME {
        return None;
    }
    if name.is_empty() {
        name.push('.');
    }
    let fixed = msg.get(at..at + 4)?;
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    if fixed[2..4] != [0, 1] {
        return None;
    }
    at += 4;
    let edns = match header[11] {
        0 if at == msg.len() => None,
        1 => {
            // Root owner name, type OPT, then payload size, rcode/version/flags, rdata.
            let opt = msg.get(at..at + 11)?;
            let rdlen = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
            if opt[..3] != [0, 0, 41] || at + 11 + rdlen != msg.len() {
                return None;
            }
            Some(EdnsInfo {
                payload: u16::from_be_bytes([opt[3], opt[4]]),
                dnssec_ok: opt[7] & 0x80 != 0,
            })
        }
        _ => return None,
    };
    Some(Asked { name, qtype, edns })
}

/// Header and question of `answer` with TC set: the client should ask again over TCP.
pub fn truncated(answer: &[u8]) -> Vec<u8> {
    let mut reply = error_reply(answer, rcode(answer)).unwrap_or_default();
    if let Some(flags) = reply.get_mut(2) {
        *flags |= 0x02;
    }
    reply
}

/// A response code as people read it.
pub fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        FORMERR => "FORMERR",
        SERVFAIL => "SERVFAIL",
        NXDOMAIN => "NXDOMAIN",
        NOTIMP => "NOTIMP",
        REFUSED => "REFUSED",
        _ => "another code",
    }
}

pub const FORMERR: u8 = 1;
pub const SERVFAIL: u8 = 2;
pub const NXDOMAIN: u8 = 3;
pub const NOTIMP: u8 = 4;
pub const REFUSED: u8 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    /// `www.example.test A` answered with two A records (TTL 300, 60) via a compression
    /// pointer, and an OPT record whose "TTL" must be left alone.
    fn answer() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 1];
        m.extend_from_slice(b"\x03www\x07example\x04test\x00\x00\x01\x00\x01");
        for ttl in [300u32, 60] {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&[0, 4, 192, 0, 2, 1]);
        }
        m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
        m
    }

    #[test]
    fn finds_every_ttl_but_the_opt_pseudo_record() {
        let mut m = answer();
        let map = ttl_map(&m).unwrap();
        assert_eq!(map.offsets.len(), 2);
        assert_eq!(map.lifetime, Some(60));
        age(&mut m, &map.offsets, 50);
        let again = ttl_map(&m).unwrap();
        assert_eq!(again.lifetime, Some(10));
        // The OPT record's flags (DO bit) are untouched.
        assert_eq!(&m[m.len() - 6..m.len() - 2], &[0, 0, 0x80, 0]);
    }

    #[test]
    fn negative_answers_live_as_long_as_the_soa_minimum() {
        let mut m = vec![0, 1, 0x81, 0x83, 0, 1, 0, 0, 0, 1, 0, 0];
        m.extend_from_slice(b"\x04nope\x04test\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 17, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 24]);
        m.extend_from_slice(&[0xc0, 17, 0xc0, 17]); // mname, rname
        m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
        m.extend_from_slice(&30u32.to_be_bytes()); // minimum
        assert_eq!(ttl_map(&m).unwrap().lifetime, Some(30));
        // Without an SOA a negative answer is not cached.
        let mut bare = m[..27].to_vec();
        bare[9] = 0;
        assert_eq!(ttl_map(&bare).unwrap().lifetime, None);
    }

    #[test]
    fn malformed_messages_are_refused_not_read_past_their_end() {
        let m = answer();
        for cut in 0..m.len() - 1 {
            let _ = ttl_map(&m[..cut]);
        }
        assert!(ttl_map(&m[..m.len() - 1]).is_none());
        // A label type 0x40 is not valid.
        let mut bad = m.clone();
        bad[12] = 0x43;
        assert!(question(&bad).is_none());
    }

    #[test]
    fn a_pointer_in_the_question_is_not_repeated_in_the_reply() {
        // Found by fuzzing: the label "in-ad\xff\xff" runs into bytes read as a pointer.
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x30\x03172\x07in-ad\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xffdr\x04arpa\x00\x00\x0c\x00\x01";
        assert!(question(query).is_none());
        let reply = error_reply(query, FORMERR).unwrap();
        assert_eq!(reply, b"\x12\x34\x81\x81\x00\x00\x00\x00\x00\x00\x00\x00");
        hickory_proto::op::Message::from_vec(&reply).expect("a reply that decodes");
        // Nor is a question whose name is longer than 255 octets.
        let mut long = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        for _ in 0..5 {
            long.push(60);
            long.extend_from_slice(&[b'a'; 60]);
        }
        long.extend_from_slice(b"\x00\x00\x01\x00\x01");
        assert!(question(&long).is_none());
        assert!(plain_query(&long).is_none());
        let reply = error_reply(&long, FORMERR).unwrap();
        hickory_proto::op::Message::from_vec(&reply).expect("a reply that decodes");
    }

    #[test]
    fn plain_queries_are_read_and_others_left_to_the_decoder() {
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(b"\x03WwW\x07Example\x00\x00\x1c\x00\x01");
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        let asked = plain_query(&q).unwrap();
        assert_eq!(asked.name, "www.example");
        assert_eq!(asked.qtype, 28);
        assert_eq!(
            asked.edns,
            Some(EdnsInfo {
                payload: 1232,
                dnssec_ok: true
            })
        );
        // Trailing bytes, another opcode, a second question, a dot inside a label, a
        // compression pointer: all go to the general decoder.
        let mut trailing = q.clone();
        trailing.push(0);
        let mut status = q.clone();
        status[2] = 0x10;
        let mut two = q.clone();
        two[5] = 2;
        let mut dotted = q.clone();
        dotted[14] = b'.';
        let mut pointer = q[..12].to_vec();
        pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        for odd in [&trailing, &status, &two, &dotted, &pointer] {
            assert_eq!(plain_query(odd), None);
        }
        for cut in 0..q.len() {
            assert_eq!(plain_query(&q[..cut]), None);
        }
    }

    #[test]
    fn error_replies_keep_id_question_and_rd() {
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x01b\x00\x00\x01\x00\x01");
        let r = error_reply(&q, SERVFAIL).unwrap();
        assert_eq!(id(&r), 0xabcd);
        assert!(is_response(&r));
        assert_eq!(rcode(&r), SERVFAIL);
        assert_eq!(r[2] & 0x01, 0x01);
        assert!(same_question(&q, &r));
        assert!(error_reply(&q[..5], FORMERR).is_none());
    }
}
