//! [`CtapHid`]: the CTAPHID state machine. The device serves one transaction at a time over any
//! number of channels (§11.2.5.1): while a message is being received or a request is being
//! processed, other channels are told ERR_CHANNEL_BUSY.

use super::assembly::Assembly;
use super::channels::ChannelTable;
use super::codes::{
    Command, ErrorCode, KeepaliveStatus, CAPABILITY_CBOR, CAPABILITY_WINK, PROTOCOL_VERSION,
};
use super::packet::{
    self, fragment_message, Packet, Report, BROADCAST_CID, INIT_DATA_LEN, MAX_MESSAGE_LEN,
};

/// What INIT advertises. CAPABILITY_NMSG stays clear because CTAPHID_MSG (U2F) is served.
const CAPABILITIES: u8 = CAPABILITY_WINK | CAPABILITY_CBOR;

/// CTAPHID_INIT carries exactly an 8-byte nonce (§11.2.9.1.3).
const INIT_NONCE_LEN: usize = 8;

/// CTAPHID_LOCK lasts at most 10 seconds (§11.2.9.2.2).
const MAX_LOCK_SECONDS: u8 = 10;

/// Which authenticator a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// CTAPHID_MSG: a CTAP1/U2F APDU.
    Msg,
    /// CTAPHID_CBOR: a CTAP2 command byte and its CBOR parameters.
    Cbor,
}

impl RequestKind {
    fn command(self) -> Command {
        match self {
            Self::Msg => Command::Msg,
            Self::Cbor => Command::Cbor,
        }
    }
}

/// The vendor-defined device version reported by CTAPHID_INIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DeviceVersion {
    pub major: u8,
    pub minor: u8,
    pub build: u8,
}

/// What the daemon has to do after feeding the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A report to send to the host.
    Send(Report),
    /// A complete CTAP1 (Msg) or CTAP2 (Cbor) request for the authenticator. `token` identifies
    /// this request; pass it back to [`CtapHid::respond`].
    Request {
        token: u64,
        cid: u32,
        kind: RequestKind,
        payload: Vec<u8>,
    },
    /// The host cancelled (CTAPHID_CANCEL) or aborted (CTAPHID_INIT resync on that channel) the
    /// pending request `token`; the authenticator should stop waiting for user presence and
    /// answer CTAP2_ERR_KEEPALIVE_CANCEL (its answer is still sent via respond for CANCEL; for an
    /// INIT-aborted request respond() silently drops it).
    Cancel { token: u64 },
    /// The host asked the device to identify itself (CTAPHID_WINK).
    Wink,
    /// CTAPHID_INIT on an allocated channel: the host starts over on `cid` (§11.2.9.1.3), so
    /// the authenticator forgets the state that channel began (see `ctap2::state`).
    ChannelReset { cid: u32 },
}

/// The one transaction the device is in, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Transaction {
    Idle,
    /// A request message is arriving packet by packet.
    Receiving(Assembly),
    /// A request was handed to the authenticator and awaits its answer.
    Processing(PendingRequest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingRequest {
    token: u64,
    cid: u32,
    kind: RequestKind,
}

/// A CTAPHID_LOCK: only `cid` may talk to the device until `until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChannelLock {
    cid: u32,
    until_ms: u64,
}

/// The CTAPHID transport of one device, free of I/O (see the module documentation).
#[derive(Debug, Clone)]
pub struct CtapHid {
    version: DeviceVersion,
    channels: ChannelTable,
    transaction: Transaction,
    lock: Option<ChannelLock>,
    next_token: u64,
}

impl CtapHid {
    pub fn new(version: DeviceVersion) -> Self {
        Self {
            version,
            channels: ChannelTable::new(),
            transaction: Transaction::Idle,
            lock: None,
            next_token: 1,
        }
    }

    /// One output report from the host (the daemon strips the HID report-ID byte first).
    /// Reports of a length other than 64 are malformed.
    pub fn receive(&mut self, report: &[u8], now_ms: u64) -> Vec<Event> {
        // Whatever expired before this report arrived expires first, so a late packet cannot
        // revive a dropped message.
        let mut events = self.poll_timeouts(now_ms);
        match <&Report>::try_from(report) {
            Ok(report) => match packet::parse(report) {
                Packet::Init {
                    cid,
                    command_code,
                    message_len,
                    data,
                } => self.on_init_packet(cid, command_code, message_len, data, now_ms, &mut events),
                Packet::Continuation { cid, seq, data } => {
                    self.on_continuation_packet(cid, seq, data, now_ms, &mut events);
                }
            },
            Err(_) => self.on_malformed_report(report, &mut events),
        }
        events
    }

    /// Expires half-received messages (ERR_MSG_TIMEOUT to their channel) and LOCKs whose time
    /// is over.
    pub fn poll_timeouts(&mut self, now_ms: u64) -> Vec<Event> {
        let mut events = Vec::new();
        if let Transaction::Receiving(assembly) = &self.transaction {
            if now_ms >= assembly.deadline_ms {
                events.push(error(assembly.cid, ErrorCode::MessageTimeout));
                self.transaction = Transaction::Idle;
            }
        }
        if let Some(lock) = self.lock {
            if now_ms >= lock.until_ms {
                self.lock = None;
            }
        }
        events
    }

    /// When [`Self::poll_timeouts`] next has something to do (None: nothing pending), so the
    /// daemon sleeps exactly until then.
    pub fn next_deadline(&self) -> Option<u64> {
        let message_deadline = match &self.transaction {
            Transaction::Receiving(assembly) => Some(assembly.deadline_ms),
            Transaction::Idle | Transaction::Processing(_) => None,
        };
        let lock_deadline = self.lock.map(|lock| lock.until_ms);
        match (message_deadline, lock_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The authenticator's answer (status byte + data, or the U2F APDU response) to request
    /// `token`: the reports to send, with the same command as the request. Unknown, stale and
    /// aborted tokens give no reports. Ends the transaction.
    pub fn respond(&mut self, token: u64, payload: &[u8]) -> Vec<Report> {
        let Transaction::Processing(pending) = self.transaction else {
            return Vec::new();
        };
        if pending.token != token {
            return Vec::new();
        }
        self.transaction = Transaction::Idle;
        // An answer too long to frame is an authenticator bug; the host still gets an answer.
        fragment_message(pending.cid, pending.kind.command(), payload)
            .unwrap_or_else(|| vec![packet::error_report(pending.cid, ErrorCode::Other)])
    }

    /// A KEEPALIVE report for the pending request, if one is pending.
    ///
    /// Only CTAPHID_CBOR requests get one: the spec allows keepalives for CBOR
    /// (§11.2.9.1.2) and defines none for MSG, whose U2F hosts may not expect them.
    pub fn keepalive(&self, status: KeepaliveStatus) -> Option<Report> {
        match self.transaction {
            Transaction::Processing(PendingRequest {
                cid,
                kind: RequestKind::Cbor,
                ..
            }) => Some(packet::single_report(
                cid,
                Command::Keepalive,
                &[status.code()],
            )),
            _ => None,
        }
    }

    /// Whether a request is being processed (handed out as [`Event::Request`], not yet
    /// responded).
    pub fn is_busy(&self) -> bool {
        matches!(self.transaction, Transaction::Processing(_))
    }

    fn on_init_packet(
        &mut self,
        cid: u32,
        command_code: u8,
        message_len: usize,
        data: &[u8; INIT_DATA_LEN],
        now_ms: u64,
        events: &mut Vec<Event>,
    ) {
        let command = Command::from_code(command_code);
        // §11.2.9.1.5: the authenticator MUST NOT reply to CANCEL, whatever its channel.
        if command == Some(Command::Cancel) {
            self.on_cancel(cid, events);
            return;
        }
        if let Err(refusal) = self.admit(cid, command) {
            events.push(error(cid, refusal));
            return;
        }
        match command {
            Some(Command::Init) => self.on_init(cid, message_len, data, events),
            Some(Command::Wink) => self.on_wink(cid, message_len, events),
            Some(Command::Lock) => self.on_lock(cid, message_len, data, now_ms, events),
            Some(command @ (Command::Ping | Command::Msg | Command::Cbor)) => {
                self.start_message(cid, command, message_len, data, now_ms, events);
            }
            // KEEPALIVE and ERROR only travel from device to host.
            Some(Command::Keepalive | Command::Error | Command::Cancel) | None => {
                events.push(error(cid, ErrorCode::InvalidCommand));
            }
        }
    }

    /// Whether the device takes a new message from `cid` now, and if not, what to answer. A
    /// broken sequence also drops the half-received message it broke.
    fn admit(&mut self, cid: u32, command: Option<Command>) -> Result<(), ErrorCode> {
        let allowed_channel = if cid == BROADCAST_CID {
            command == Some(Command::Init)
        } else {
            self.channels.contains(cid)
        };
        if !allowed_channel {
            return Err(ErrorCode::InvalidChannel);
        }
        // §11.2.9.2.2: while locked, any other channel trying to send a message fails;
        // OpenSK answers ERR_CHANNEL_BUSY, and so does this, INIT included.
        if self.lock.is_some_and(|lock| lock.cid != cid) {
            return Err(ErrorCode::ChannelBusy);
        }
        // INIT is not refused for being busy. On the broadcast channel it touches no
        // transaction (a busy error there would reach every client, and libfido2 fails to open
        // a device whose INIT is not answered by INIT); on an allocated channel it exists to
        // abort that channel's transaction (§11.2.5.3).
        if command == Some(Command::Init) {
            return Ok(());
        }
        match &self.transaction {
            Transaction::Idle => Ok(()),
            Transaction::Receiving(assembly) if assembly.cid == cid => {
                // A new message where a continuation packet was due: the sequence is broken,
                // and the half-received message is dropped (OpenSK, usbd-ctaphid).
                self.transaction = Transaction::Idle;
                Err(ErrorCode::InvalidSequence)
            }
            // §11.2.5.1. A channel whose own request is pending is busy as well: the spec
            // allows one transaction at a time and defines no queue.
            Transaction::Receiving(_) | Transaction::Processing(_) => Err(ErrorCode::ChannelBusy),
        }
    }

    fn on_init(
        &mut self,
        cid: u32,
        message_len: usize,
        data: &[u8; INIT_DATA_LEN],
        events: &mut Vec<Event>,
    ) {
        if message_len != INIT_NONCE_LEN {
            events.push(error(cid, ErrorCode::InvalidLength));
            return;
        }
        let assigned_cid = if cid == BROADCAST_CID {
            self.channels.allocate()
        } else {
            // §11.2.5.3: INIT on the channel of the active transaction aborts it.
            self.abort_transaction_of(cid, events);
            self.channels.touch(cid);
            events.push(Event::ChannelReset { cid });
            cid
        };
        let [n0, n1, n2, n3, n4, n5, n6, n7, ..] = *data;
        let [c0, c1, c2, c3] = assigned_cid.to_be_bytes();
        let DeviceVersion {
            major,
            minor,
            build,
        } = self.version;
        let answer = [
            n0,
            n1,
            n2,
            n3,
            n4,
            n5,
            n6,
            n7,
            c0,
            c1,
            c2,
            c3,
            PROTOCOL_VERSION,
            major,
            minor,
            build,
            CAPABILITIES,
        ];
        // The answer goes out on the channel the INIT came on, broadcast included.
        events.push(Event::Send(packet::single_report(
            cid,
            Command::Init,
            &answer,
        )));
    }

    fn abort_transaction_of(&mut self, cid: u32, events: &mut Vec<Event>) {
        match &self.transaction {
            Transaction::Receiving(assembly) if assembly.cid == cid => {
                self.transaction = Transaction::Idle;
            }
            Transaction::Processing(pending) if pending.cid == cid => {
                events.push(Event::Cancel {
                    token: pending.token,
                });
                self.transaction = Transaction::Idle;
            }
            _ => {}
        }
    }

    fn on_cancel(&mut self, cid: u32, events: &mut Vec<Event>) {
        // §11.2.9.1.5: a CANCEL while no CTAPHID_CBOR request is being processed, or on another
        // channel, SHALL be ignored. The cancelled request still ends with its own answer.
        if let Transaction::Processing(PendingRequest {
            token,
            cid: pending_cid,
            kind: RequestKind::Cbor,
        }) = self.transaction
        {
            if pending_cid == cid {
                events.push(Event::Cancel { token });
            }
        }
    }

    fn on_wink(&mut self, cid: u32, message_len: usize, events: &mut Vec<Event>) {
        // §11.2.9.2.1: WINK carries no data either way.
        if message_len != 0 {
            events.push(error(cid, ErrorCode::InvalidLength));
            return;
        }
        self.channels.touch(cid);
        events.push(Event::Wink);
        events.push(Event::Send(packet::single_report(cid, Command::Wink, &[])));
    }

    fn on_lock(
        &mut self,
        cid: u32,
        message_len: usize,
        data: &[u8; INIT_DATA_LEN],
        now_ms: u64,
        events: &mut Vec<Event>,
    ) {
        let [seconds, ..] = *data;
        if message_len != 1 {
            events.push(error(cid, ErrorCode::InvalidLength));
            return;
        }
        if seconds > MAX_LOCK_SECONDS {
            events.push(error(cid, ErrorCode::InvalidParameter));
            return;
        }
        self.channels.touch(cid);
        // A lock time of 0 releases the lock at once.
        self.lock = (seconds > 0).then(|| ChannelLock {
            cid,
            until_ms: now_ms.saturating_add(u64::from(seconds) * 1000),
        });
        events.push(Event::Send(packet::single_report(cid, Command::Lock, &[])));
    }

    fn start_message(
        &mut self,
        cid: u32,
        command: Command,
        message_len: usize,
        data: &[u8; INIT_DATA_LEN],
        now_ms: u64,
        events: &mut Vec<Event>,
    ) {
        if message_len > MAX_MESSAGE_LEN {
            events.push(error(cid, ErrorCode::InvalidLength));
            return;
        }
        // §11.2.9.1.2: a CBOR message starts with its command byte.
        if command == Command::Cbor && message_len == 0 {
            events.push(error(cid, ErrorCode::InvalidLength));
            return;
        }
        self.channels.touch(cid);
        let assembly = Assembly::start(cid, command, message_len, data, now_ms);
        if assembly.is_complete() {
            self.finish_message(assembly, events);
        } else {
            self.transaction = Transaction::Receiving(assembly);
        }
    }

    fn on_continuation_packet(
        &mut self,
        cid: u32,
        seq: u8,
        data: &[u8],
        now_ms: u64,
        events: &mut Vec<Event>,
    ) {
        let Transaction::Receiving(assembly) = &mut self.transaction else {
            // §11.2.5.4: spurious continuation packets are ignored.
            return;
        };
        if assembly.cid != cid {
            // Not a new request, so no busy answer either: just another spurious packet.
            return;
        }
        if assembly.continue_with(seq, data, now_ms).is_err() {
            // §11.2.5.4 wants packets in ascending order without gaps; a broken sequence drops
            // the message with ERR_INVALID_SEQ (as OpenSK and usbd-ctaphid do).
            self.transaction = Transaction::Idle;
            events.push(error(cid, ErrorCode::InvalidSequence));
            return;
        }
        if assembly.is_complete() {
            if let Transaction::Receiving(assembly) =
                std::mem::replace(&mut self.transaction, Transaction::Idle)
            {
                self.finish_message(assembly, events);
            }
        }
    }

    fn finish_message(&mut self, assembly: Assembly, events: &mut Vec<Event>) {
        let cid = assembly.cid;
        let kind = match assembly.command {
            Command::Msg => RequestKind::Msg,
            Command::Cbor => RequestKind::Cbor,
            Command::Ping => {
                // §11.2.9.1.4: PING echoes its data, and the transaction is over.
                self.transaction = Transaction::Idle;
                let payload = assembly.into_payload();
                let echo = fragment_message(cid, Command::Ping, &payload)
                    .unwrap_or_else(|| vec![packet::error_report(cid, ErrorCode::Other)]);
                events.extend(echo.into_iter().map(Event::Send));
                return;
            }
            // Only PING, MSG and CBOR are assembled.
            _ => {
                self.transaction = Transaction::Idle;
                events.push(error(cid, ErrorCode::InvalidCommand));
                return;
            }
        };
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        self.transaction = Transaction::Processing(PendingRequest { token, cid, kind });
        events.push(Event::Request {
            token,
            cid,
            kind,
            payload: assembly.into_payload(),
        });
    }

    fn on_malformed_report(&mut self, report: &[u8], events: &mut Vec<Event>) {
        // A report of the wrong size cannot be read as a packet; only a channel we gave out is
        // told, so stray writes cannot make the device talk to arbitrary channels.
        let Some(cid) = packet::channel_of(report) else {
            return;
        };
        if !self.channels.contains(cid) {
            return;
        }
        // The message it was part of has lost a packet and cannot complete.
        if matches!(&self.transaction, Transaction::Receiving(assembly) if assembly.cid == cid) {
            self.transaction = Transaction::Idle;
        }
        events.push(error(cid, ErrorCode::InvalidLength));
    }
}

fn error(cid: u32, code: ErrorCode) -> Event {
    Event::Send(packet::error_report(cid, code))
}

#[cfg(test)]
mod tests;
