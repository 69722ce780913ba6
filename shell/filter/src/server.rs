//! The loopback DNS server: the imperative shell around [`Filter::decide`]. It owns sockets,
//! the upstream resolver (hickory-resolver, with its cache), the clock, the block-event queue
//! and the recent-names buffer. UDP is its own loop (`serve_udp`): an ordinary query for a
//! refused name is read, decided and answered in place ([`crate::wire`]) with no task and no
//! message parse, which is most of a filter's work; everything else, and TCP (hickory-server), goes
//! the full way. It must not decide anything itself, and it never logs a name a
//! pupil looked up (tracing gets lists, rules and counts only).
//!
//! # Answers
//!
//! - Allow: the upstream's answer, TTLs capped at [`MAX_ANSWER_TTL`].
//! - Rewrite (A, AAAA, HTTPS of a search host): a CNAME from the asked name to the safe host,
//!   then the upstream's records for the safe host.
//! - Block: `NXDOMAIN`, with no SOA, so nothing caches the refusal and a bypass or new policy
//!   takes effect at once. Not `0.0.0.0`: on Linux a connection to `0.0.0.0` reaches the device's
//!   own loopback services, so a blocked page would be served by whatever listens locally;
//!   `NXDOMAIN` also answers every query type the same way (AAAA, HTTPS, MX) with nothing to
//!   connect to. The kiosk browser shows its own gentle page for a name that does not resolve.
//!
//! Upstream failures answer `SERVFAIL` (the browser then says the site cannot be reached); the
//! upstreams' own `NXDOMAIN`/no-data answers are passed on.

use crate::events::{BlockEvent, Coalescer, RecentNames};
use crate::filter::{Block, Decision, Filter};
use crate::wire;
use chrono::{DateTime, Utc};
use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::Resolver;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

/// Longest TTL handed to clients, so a policy change or an ended bypass reaches the browser's
/// own cache within a minute.
pub const MAX_ANSWER_TTL: u32 = 60;
/// TTL of the synthesised safe-search CNAME.
pub const REWRITE_TTL: u32 = 60;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("no upstream resolver configured")]
    NoUpstream,
    #[error("cannot build the upstream resolver: {0}")]
    Resolver(String),
    #[error("DNS server failed: {0}")]
    Serve(String),
}

/// Where to listen, where to forward, and how much to remember.
#[derive(Debug, Clone)]
pub struct Config {
    /// UDP and TCP, same port (on a device `127.0.0.1:53`; in tests `127.0.0.1:0`).
    pub listen: SocketAddr,
    /// Upstream resolvers, by address and port.
    pub upstreams: Vec<SocketAddr>,
    /// How many recently looked-up names the report button can see.
    pub recent_names: usize,
    /// How long a looked-up name stays in that list.
    pub recent_window: chrono::Duration,
    /// Block events buffered for the daemon before new ones are dropped (and counted).
    pub event_capacity: usize,
    /// Repeats of one blocked name within this window are one event.
    pub coalesce: chrono::Duration,
    /// Upstream query timeout.
    pub upstream_timeout: Duration,
}

impl Config {
    pub fn new(listen: SocketAddr, upstreams: Vec<SocketAddr>) -> Self {
        Self {
            listen,
            upstreams,
            recent_names: 20,
            recent_window: chrono::Duration::seconds(120),
            event_capacity: 1024,
            coalesce: chrono::Duration::seconds(60),
            upstream_timeout: Duration::from_secs(3),
        }
    }
}

/// The wall clock, behind a trait so tests can drive it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall clock that moves with tokio's clock: `base` plus the tokio time elapsed since it was
/// made. Under `tokio::time::pause()` it stands still until the test advances it.
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base: DateTime<Utc>) -> Self {
        Self { base, start: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default();
        self.base + elapsed
    }
}

/// A block event waiting for slated, with the session it belongs to: `epoch` counts profile
/// switches (sign-ins and sign-outs), so an event still queued when the pupil changed is dropped
/// rather than put on the next pupil's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub epoch: u64,
    pub event: BlockEvent,
}

/// What the daemon holds to steer a running server: swap policy or profile, read recent names,
/// see how many events were dropped.
#[derive(Clone)]
pub struct FilterHandle {
    shared: Arc<Shared>,
}

struct Shared {
    filter: RwLock<Filter>,
    recent: Mutex<RecentNames>,
    coalescer: Mutex<Coalescer>,
    events: mpsc::Sender<Queued>,
    dropped_events: AtomicU64,
    /// Profile switches so far; see [`Queued`].
    epoch: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl FilterHandle {
    /// Changes the filter in place (a new policy, a new list, the signed-in pupil's profile).
    pub fn update<T>(&self, change: impl FnOnce(&mut Filter) -> T) -> T {
        change(&mut self.shared.filter.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the filter (lists, policy, profile in force).
    pub fn read<T>(&self, look: impl FnOnce(&Filter) -> T) -> T {
        look(&self.shared.filter.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The termly filter check's question: the list that blocks an A query for `name` under the
    /// profile in force, or `None` when it would be answered (forwarded or rewritten to a safe
    /// host). The very decision a query gets, but not remembered as a lookup: no recent name
    /// and no block event (a check is not a pupil's visit).
    pub fn check(&self, name: &str) -> Option<String> {
        let now = self.shared.clock.now();
        let a = u16::from(RecordType::A);
        match self.read(|f| f.decide(name, a, now)) {
            Decision::Block(block) => Some(block.list),
            Decision::Allow | Decision::Rewrite(_) => None,
        }
    }

    /// Puts `profile` in force at once (`None`: the policy's default). A profile switch is a
    /// session boundary (slated sends it at sign-in and sign-out): the recent names and the
    /// coalescer start afresh, and block events still queued from before are dropped.
    pub fn set_profile(&self, profile: Option<String>) {
        self.update(|f| f.set_profile(profile));
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.clear_recent_names();
        self.shared.coalescer.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The current session epoch; see [`Queued`].
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::SeqCst)
    }

    /// The distinct names looked up in the recent window, newest first (for a report).
    pub fn recent_names(&self) -> Vec<(String, DateTime<Utc>)> {
        let now = self.shared.clock.now();
        self.shared.recent.lock().unwrap_or_else(|e| e.into_inner()).snapshot(now)
    }

    /// Forgets recent names (between pupils' sessions).
    pub fn clear_recent_names(&self) {
        self.shared.recent.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Block events dropped because the daemon did not drain the channel in time.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped_events.load(Ordering::Relaxed)
    }
}

/// The request handler: hickory calls it for TCP queries, the UDP loop ([`serve_udp`]) for
/// queries its fast path does not finish.
struct Handler {
    shared: Arc<Shared>,
    resolver: Resolver<TokioRuntimeProvider>,
}

/// The outcome of a query, before it is written to the wire.
struct Answer {
    code: ResponseCode,
    records: Vec<Record>,
}

impl Shared {
    /// The decision for a normalised name, which is also remembered as recently looked up.
    fn decide(&self, name: &str, qtype: u16) -> (Decision, DateTime<Utc>) {
        let now = self.clock.now();
        self.recent.lock().unwrap_or_else(|e| e.into_inner()).push(name, now);
        let filter = self.filter.read().unwrap_or_else(|e| e.into_inner());
        (filter.decide_normalised(name, qtype, now), now)
    }

    /// Queues a block event for slated, once per name per coalescing window.
    fn record_block(&self, name: &str, qtype: u16, block: &Block, now: DateTime<Utc>) {
        let admit = self.coalescer.lock().unwrap_or_else(|e| e.into_inner()).admit(name, now);
        if !admit {
            return;
        }
        tracing::info!(list = %block.list, rule_kind = rule_kind(&block.rule), "blocked a query");
        let event = BlockEvent::new(now, name, qtype, block);
        let queued = Queued { epoch: self.epoch.load(Ordering::SeqCst), event };
        if self.events.try_send(queued).is_err() {
            let dropped = self.dropped_events.fetch_add(1, Ordering::Relaxed) + 1;
            // 1, 2, 4, 8, ...: a long outage of slated must not flood the log.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "block event queue full or closed; events dropped");
            }
        }
    }
}

impl Handler {
    /// Decides a name as it came off the wire (not yet normalised).
    fn decide(&self, name: &Name, qtype: RecordType) -> (Decision, DateTime<Utc>) {
        let text = name.to_ascii();
        match crate::name::normalise(&text) {
            Some(normalised) => {
                let (decision, now) = self.shared.decide(&normalised, u16::from(qtype));
                if let Decision::Block(block) = &decision {
                    self.shared.record_block(&normalised, u16::from(qtype), block, now);
                }
                (decision, now)
            }
            // Refused, but neither remembered nor reported: there is no name to report.
            None => {
                let now = self.shared.clock.now();
                let filter = self.shared.filter.read().unwrap_or_else(|e| e.into_inner());
                (filter.decide(&text, u16::from(qtype), now), now)
            }
        }
    }

    async fn forward(&self, name: Name, qtype: RecordType) -> Answer {
        match self.resolver.lookup(name, qtype).await {
            Ok(lookup) => Answer { code: ResponseCode::NoError, records: capped(lookup.answers()) },
            Err(e) if e.is_no_records_found() => {
                let code = match &e {
                    hickory_resolver::net::NetError::Dns(
                        hickory_resolver::net::DnsError::NoRecordsFound(nr),
                    ) => nr.response_code,
                    _ => ResponseCode::NXDomain,
                };
                Answer { code, records: Vec::new() }
            }
            Err(e) => {
                tracing::warn!(error = %e, "upstream lookup failed");
                Answer { code: ResponseCode::ServFail, records: Vec::new() }
            }
        }
    }

    /// Carries out a decision already made (and recorded) for `name`.
    async fn carry_out(&self, name: Name, qtype: RecordType, decision: Decision) -> Answer {
        match decision {
            Decision::Allow => self.forward(name, qtype).await,
            Decision::Rewrite(target) => {
                let Ok(target_name) = Name::from_ascii(format!("{target}.")) else {
                    return Answer { code: ResponseCode::ServFail, records: Vec::new() };
                };
                let cname =
                    Record::from_rdata(name, REWRITE_TTL, RData::CNAME(CNAME(target_name.clone())));
                let mut rest = self.forward(target_name, qtype).await;
                rest.records.insert(0, cname);
                if rest.code == ResponseCode::NXDomain {
                    rest.code = ResponseCode::ServFail; // the safe host must exist
                }
                rest
            }
            Decision::Block(_) => Answer { code: ResponseCode::NXDomain, records: Vec::new() },
        }
    }

    async fn answer(&self, name: Name, qtype: RecordType) -> Answer {
        let (decision, _) = self.decide(&name, qtype);
        self.carry_out(name, qtype, decision).await
    }
}

/// hickory's side of the handler: TCP.
struct TcpHandler(Arc<Handler>);

/// Serves DNS over UDP on `socket`. The fast path reads an ordinary query in place
/// ([`wire::parse_query`]), decides, and writes a refusal in place, all in this loop: most of
/// what a filter answers is refusals, and they need neither a task nor the upstream. Anything
/// else (an allowed name, a rewrite, an unusual packet) gets a task of its own, so a slow
/// upstream never holds up the loop.
async fn serve_udp(socket: Arc<UdpSocket>, handler: Arc<Handler>) {
    let mut packet = vec![0u8; 4096];
    let mut out = Vec::with_capacity(512);
    let mut name = [0u8; crate::name::MAX_NAME_LEN];
    loop {
        let (len, from) = match socket.recv_from(&mut packet).await {
            Ok(received) => received,
            Err(e) => {
                // ICMP errors from earlier sends and the like; never stop serving.
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        let query = &packet[..len];
        let mut decided = None;
        if let Some(q) = wire::parse_query(query, &mut name) {
            let (decision, now) = handler.shared.decide(q.name, q.qtype);
            if let Decision::Block(block) = &decision {
                handler.shared.record_block(q.name, q.qtype, block, now);
                wire::nxdomain(query, &q, &mut out);
                if let Err(e) = socket.send_to(&out, from).await {
                    tracing::debug!(error = %e, "udp send failed");
                }
                continue;
            }
            decided = Some(decision);
        }
        let (query, handler, socket) = (query.to_vec(), handler.clone(), socket.clone());
        tokio::spawn(async move {
            if let Some(reply) = slow_udp(&handler, &query, decided).await {
                if let Err(e) = socket.send_to(&reply, from).await {
                    tracing::debug!(error = %e, "udp send failed");
                }
            }
        });
    }
}

/// Answers a UDP query the fast path did not finish (with its decision, if it made one).
async fn slow_udp(handler: &Handler, packet: &[u8], decided: Option<Decision>) -> Option<Vec<u8>> {
    let request = match Message::from_vec(packet) {
        Ok(request) => request,
        Err(_) => {
            // Answer FORMERR if there is a header to answer; a fragment gets nothing.
            let id = u16::from_be_bytes([*packet.first()?, *packet.get(1)?]);
            if packet.len() < 12 || packet[2] & 0x80 != 0 {
                return None;
            }
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr).to_vec().ok();
        }
    };
    if request.metadata.message_type != MessageType::Query {
        return None; // never answer an answer
    }
    let answer = if request.metadata.op_code != OpCode::Query {
        Answer { code: ResponseCode::NotImp, records: Vec::new() }
    } else if request.queries.len() != 1 {
        Answer { code: ResponseCode::FormErr, records: Vec::new() }
    } else {
        let query = &request.queries[0];
        let name = query.name().clone();
        let qtype = query.query_type();
        match decided {
            Some(decision) => handler.carry_out(name, qtype, decision).await,
            None => handler.answer(name, qtype).await,
        }
    };
    udp_reply(&request, answer)
}

/// The reply to `request` as UDP bytes: truncated (TC, no records) when it would not fit what the
/// asker can take, so it asks again over TCP.
fn udp_reply(request: &Message, answer: Answer) -> Option<Vec<u8>> {
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata = Metadata::response_from_request(&request.metadata);
    reply.metadata.recursion_available = true;
    reply.metadata.response_code = answer.code;
    reply.queries = request.queries.clone();
    reply.answers = answer.records;
    let limit = match &request.edns {
        Some(edns) => {
            let mut ours = Edns::new();
            ours.set_max_payload(wire::EDNS_PAYLOAD);
            ours.set_dnssec_ok(edns.flags().dnssec_ok);
            reply.set_edns(ours);
            usize::from(edns.max_payload().clamp(512, wire::EDNS_PAYLOAD))
        }
        None => 512,
    };
    let bytes = reply.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    reply.answers.clear();
    reply.metadata.truncation = true;
    reply.to_vec().ok()
}

fn rule_kind(rule: &str) -> &'static str {
    if rule.starts_with("*.") {
        "wildcard"
    } else {
        "exact"
    }
}

fn capped(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .cloned()
        .map(|mut r| {
            r.ttl = r.ttl.min(MAX_ANSWER_TTL);
            r
        })
        .collect()
}

#[async_trait::async_trait]
impl RequestHandler for TcpHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let handler = &self.0;
        let answer = if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            Answer { code: ResponseCode::NotImp, records: Vec::new() }
        } else {
            match request.request_info() {
                Ok(info) => {
                    let name: Name = info.query.name().into();
                    handler.answer(name, info.query.query_type()).await
                }
                Err(_) => Answer { code: ResponseCode::FormErr, records: Vec::new() },
            }
        };
        send(request, response_handle, answer).await
    }
}

async fn send<R: ResponseHandler>(
    request: &Request,
    mut handle: R,
    answer: Answer,
) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.recursion_available = true;
    metadata.response_code = answer.code;
    let builder = MessageResponseBuilder::from_message_request(request);
    let response = builder.build(metadata, answer.records.iter(), [], [], []);
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(error = %e, "could not send a DNS response");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            hickory_proto::op::Header { metadata, counts: Default::default() }.into()
        }
    }
}

/// Builds the forwarding resolver: only the configured upstreams, no hosts file, no search
/// domains, intermediate CNAMEs kept so clients see the whole chain.
fn resolver(config: &Config) -> Result<Resolver<TokioRuntimeProvider>, ServerError> {
    if config.upstreams.is_empty() {
        return Err(ServerError::NoUpstream);
    }
    let servers = config
        .upstreams
        .iter()
        .map(|addr| {
            let connections = [ProtocolConfig::Udp, ProtocolConfig::Tcp]
                .into_iter()
                .map(|p| {
                    let mut c = ConnectionConfig::new(p);
                    c.port = addr.port();
                    c
                })
                .collect();
            NameServerConfig::new(addr.ip(), true, connections)
        })
        .collect();
    let mut opts = ResolverOpts::default();
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ndots = 0;
    opts.preserve_intermediates = true;
    opts.timeout = config.upstream_timeout;
    opts.attempts = 2;
    Resolver::builder_with_config(
        ResolverConfig::from_name_servers(servers),
        TokioRuntimeProvider::default(),
    )
    .with_options(opts)
    .build()
    .map_err(|e| ServerError::Resolver(e.to_string()))
}

/// Binds UDP and TCP on the same address (with port 0, the port UDP was given).
async fn bind(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), ServerError> {
    let bind_err = |source| ServerError::Bind { addr: listen, source };
    for _ in 0..8 {
        let udp = UdpSocket::bind(listen).await.map_err(bind_err)?;
        let addr = udp.local_addr().map_err(bind_err)?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // With port 0 the UDP port may be taken for TCP: try another.
            Err(_) if listen.port() == 0 => continue,
            Err(source) => return Err(ServerError::Bind { addr, source }),
        }
    }
    Err(bind_err(std::io::Error::other("no port free for both UDP and TCP")))
}

/// A running filtering DNS server.
pub struct DnsServer {
    /// TCP.
    server: hickory_server::Server<TcpHandler>,
    /// UDP.
    udp: tokio::task::JoinHandle<()>,
    addr: SocketAddr,
    handle: FilterHandle,
}

impl DnsServer {
    /// Binds and starts serving. Block events arrive on the returned receiver.
    pub async fn start(
        config: &Config,
        filter: Filter,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, mpsc::Receiver<Queued>), ServerError> {
        let (udp, tcp) = bind(config.listen).await?;
        let addr =
            udp.local_addr().map_err(|source| ServerError::Bind { addr: config.listen, source })?;
        let (events, receiver) = mpsc::channel(config.event_capacity.max(1));
        let shared = Arc::new(Shared {
            filter: RwLock::new(filter),
            recent: Mutex::new(RecentNames::new(config.recent_names, config.recent_window)),
            coalescer: Mutex::new(Coalescer::new(config.coalesce)),
            events,
            dropped_events: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            clock,
        });
        let handler = Arc::new(Handler { shared: shared.clone(), resolver: resolver(config)? });
        let mut server = hickory_server::Server::new(TcpHandler(handler.clone()));
        server.register_listener(tcp, Duration::from_secs(5), 64);
        let udp = tokio::spawn(serve_udp(Arc::new(udp), handler));
        tracing::info!(%addr, upstreams = config.upstreams.len(), "DNS filter listening");
        Ok((Self { server, udp, addr, handle: FilterHandle { shared } }, receiver))
    }

    /// The address it listens on, UDP and TCP.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> FilterHandle {
        self.handle.clone()
    }

    /// Serves until `shutdown` completes, then stops gracefully.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServerError> {
        tokio::select! {
            result = self.server.block_until_done() => result.map_err(|e| ServerError::Serve(e.to_string())),
            () = shutdown => self.shutdown().await,
        }
    }

    /// Stops serving.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        self.udp.abort();
        self.server.shutdown_gracefully().await.map_err(|e| ServerError::Serve(e.to_string()))
    }
}

/// A fixed-answer authority for tests and benchmarks: answers the records it was given and
/// `NXDOMAIN` for anything else. Listens on the address it is given (tests: `127.0.0.1:0`).
pub struct FixedUpstream {
    server: hickory_server::Server<FixedAnswers>,
    addr: SocketAddr,
}

struct FixedAnswers {
    records: HashMap<(Name, RecordType), Vec<Record>>,
    /// Answer this A record for any name not in `records` (benchmarks), instead of NXDOMAIN.
    wildcard_a: Option<std::net::Ipv4Addr>,
}

#[async_trait::async_trait]
impl RequestHandler for FixedAnswers {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let answer = match request.request_info() {
            Ok(info) => {
                let name: Name = info.query.name().into();
                let qtype = info.query.query_type();
                let cname = self.records.get(&(name.clone(), RecordType::CNAME));
                match (self.records.get(&(name.clone(), qtype)), self.wildcard_a) {
                    (Some(records), _) => {
                        Answer { code: ResponseCode::NoError, records: records.clone() }
                    }
                    // An alias: the CNAME, then the target's records (one level, as a test needs).
                    (None, _) if cname.is_some() => {
                        let mut records = cname.cloned().unwrap_or_default();
                        if let Some(RData::CNAME(CNAME(target))) = records.first().map(|r| &r.data)
                        {
                            let target = target.clone();
                            records.extend(
                                self.records.get(&(target, qtype)).cloned().unwrap_or_default(),
                            );
                        }
                        Answer { code: ResponseCode::NoError, records }
                    }
                    (None, Some(ip)) if qtype == RecordType::A => Answer {
                        code: ResponseCode::NoError,
                        records: vec![Record::from_rdata(name, 300, RData::A(ip.into()))],
                    },
                    (None, Some(_)) => Answer { code: ResponseCode::NoError, records: Vec::new() },
                    (None, None) => Answer { code: ResponseCode::NXDomain, records: Vec::new() },
                }
            }
            Err(_) => Answer { code: ResponseCode::FormErr, records: Vec::new() },
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.response_code = answer.code;
        let response = MessageResponseBuilder::from_message_request(request).build(
            metadata,
            answer.records.iter(),
            [],
            [],
            [],
        );
        let mut handle = response_handle;
        match handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                hickory_proto::op::Header { metadata, counts: Default::default() }.into()
            }
        }
    }
}

impl FixedUpstream {
    /// Serves `records` (each under its own name and type) on `listen`, UDP and TCP.
    pub async fn start(
        listen: SocketAddr,
        records: Vec<Record>,
        wildcard_a: Option<std::net::Ipv4Addr>,
    ) -> Result<Self, ServerError> {
        let mut map: HashMap<(Name, RecordType), Vec<Record>> = HashMap::new();
        for r in records {
            map.entry((r.name.clone(), r.record_type())).or_default().push(r);
        }
        let (udp, tcp) = bind(listen).await?;
        let addr = udp.local_addr().map_err(|source| ServerError::Bind { addr: listen, source })?;
        let mut server = hickory_server::Server::new(FixedAnswers { records: map, wildcard_a });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        Ok(Self { server, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        self.server.shutdown_gracefully().await.map_err(|e| ServerError::Serve(e.to_string()))
    }
}
