//! Connections that are not yet a session (the head not complete, an answer
//! being sent, a first-message token awaited): how many each IP has
//! (`--max-pending-per-ip`), and which is the oldest, to make room for a new
//! connection when `--max-connections` is reached.
//!
//! One IP here is one [`ClientKey`]: an IPv6 /64 shares one cap.
//!
//! Each entry shares the connection's socket (an `Arc`): closing the oldest
//! shuts the socket through that share, which keeps the descriptor open, so
//! it can never be a descriptor that was closed and reused by then.

use crate::client_key::ClientKey;
use crate::http::has_unread_bytes;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most clients whose refusals wait for their summary line; past it, refusals
/// from further clients are summed under one line.
const MAX_LOGGED_IPS: usize = 4096;
/// At most one summary line per IP (and one for evictions) this often.
const LOG_EVERY: Duration = Duration::from_secs(1);
/// How many of the oldest pending connections are looked at for an idle one
/// to close, before the oldest is closed whatever it is doing.
const IDLE_SCAN: usize = 256;

/// Identifies one pending connection.
pub type Ticket = u64;

/// Why a connection could not be taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its IP already has the most pending connections allowed.
    OverCap,
    /// It was closed to make room meanwhile, or the server is stopping.
    Gone,
}

struct Entry {
    /// The client it is counted for (against the cap, when there is one);
    /// `None` while not counted (a trusted proxy, or a PROXY header not
    /// read yet). The client with the most makes room first.
    client: Option<ClientKey>,
    /// The connection's socket, to shut it down.
    socket: Option<Arc<TcpStream>>,
    /// Its head is complete: it is being answered, not idle.
    answering: bool,
}

impl Entry {
    /// Neither being answered nor with bytes waiting to be read: a socket
    /// that sends nothing, or whose thread has not read what it sent.
    fn idle(&self) -> bool {
        !self.answering && self.socket.as_deref().is_none_or(|s| !has_unread_bytes(s))
    }
}

/// The connection to close to make room for `keep` (see
/// [`Pending::close_oldest`]).
fn choose(table: &Table, keep: Ticket) -> Option<Ticket> {
    let oldest = || {
        let candidates = table.entries.iter().filter(|(t, _)| **t != keep);
        candidates.take(IDLE_SCAN)
    };
    let first = *oldest().next()?.0;
    let count = |client| table.per_ip.get(&client).copied();
    let held = |e: &Entry| e.client.and_then(count).unwrap_or(0);
    // The busiest client (the oldest of them on a tie), if it holds two or more.
    let busiest = oldest()
        .map(|(_, e)| (e.client, held(e)))
        .fold(
            (None, 1),
            |best, (client, n)| if n > best.1 { (client, n) } else { best },
        )
        .0;
    let idle_of = |of: Option<ClientKey>| {
        oldest()
            .filter(|(_, e)| of.is_none() || e.client == of)
            .find(|(_, e)| e.idle())
            .map(|(t, _)| *t)
    };
    let chosen = busiest
        .and_then(|b| idle_of(Some(b)))
        .or_else(|| idle_of(None));
    Some(chosen.unwrap_or(first))
}

#[derive(Default)]
struct Table {
    next: Ticket,
    /// Oldest first.
    entries: BTreeMap<Ticket, Entry>,
    per_ip: HashMap<ClientKey, usize>,
    /// The server is stopping: no connection is taken any more.
    closed: bool,
}

impl Table {
    /// Counts one more connection for `client`, unless it is at `cap` (0: none).
    fn count(&mut self, client: ClientKey, cap: usize) -> Result<(), Refused> {
        let count = self.per_ip.entry(client).or_default();
        if cap > 0 && *count >= cap {
            return Err(Refused::OverCap);
        }
        *count += 1;
        Ok(())
    }

    /// Takes an entry out, and its count off its client's.
    fn take(&mut self, ticket: Ticket) -> Option<Entry> {
        let entry = self.entries.remove(&ticket)?;
        if let Some(client) = entry.client
            && let Some(n) = self.per_ip.get_mut(&client)
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&client);
            }
        }
        Some(entry)
    }
}

/// Refusals waiting for their summary line.
#[derive(Default)]
struct Summaries {
    /// Per client: the last line and the count since, and the address last
    /// refused (what the line shows).
    per_ip: HashMap<ClientKey, (Option<(Instant, u64)>, IpAddr)>,
    /// Refusals of clients that did not fit in `per_ip`.
    others: u64,
    /// Connections closed to make room: last line, count since.
    evicted: Option<(Instant, u64)>,
    /// Connections answered 503 for want of a thread: last line, count since.
    no_thread: Option<(Instant, u64)>,
}

/// The pending connections of one server.
pub struct Pending {
    cap: usize,
    table: Mutex<Table>,
    summaries: Mutex<Summaries>,
}

impl Pending {
    /// At most `cap` pending connections per IP; 0 disables the cap.
    pub fn new(cap: usize) -> Pending {
        Pending {
            cap,
            table: Mutex::new(Table::default()),
            summaries: Mutex::new(Summaries::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new connection, counted against `ip`'s cap when `ip` is given.
    pub fn add(
        &self,
        ip: Option<IpAddr>,
        socket: Option<Arc<TcpStream>>,
    ) -> Result<Ticket, Refused> {
        let mut table = self.table();
        if table.closed {
            return Err(Refused::Gone);
        }
        // Counted with the cap off too: the busiest client makes room first.
        let client = ip.map(ClientKey::from);
        if let Some(client) = client {
            table.count(client, self.cap)?;
        }
        let ticket = table.next;
        table.next += 1;
        let entry = Entry {
            client,
            socket,
            answering: false,
        };
        table.entries.insert(ticket, entry);
        Ok(ticket)
    }

    /// Counts a connection already added against `ip` (its PROXY header has
    /// been read). Fails when `ip` is at its cap, or when the connection was
    /// closed to make room meanwhile.
    pub fn count(&self, ticket: Ticket, ip: IpAddr) -> Result<(), Refused> {
        let mut table = self.table();
        if !table.entries.contains_key(&ticket) {
            return Err(Refused::Gone);
        }
        let client = ClientKey::from(ip);
        table.count(client, self.cap)?;
        if let Some(entry) = table.entries.get_mut(&ticket) {
            entry.client = Some(client);
        }
        Ok(())
    }

    /// The connection's head is complete: it is being answered, and is closed
    /// to make room only when no idle connection is left to close.
    pub fn answering(&self, ticket: Ticket) {
        if let Some(entry) = self.table().entries.get_mut(&ticket) {
            entry.answering = true;
        }
    }

    /// The connection became a session, or ended: it is no longer pending.
    pub fn remove(&self, ticket: Ticket) {
        let entry = self.table().take(ticket);
        // Often the last share of the socket: it closes here, outside the lock.
        drop(entry);
    }

    /// Closes the oldest pending connection other than `keep`, without an
    /// answer; returns whether there was one. Among the [`IDLE_SCAN`]
    /// oldest, the oldest idle one of the client with the most of them goes
    /// first, then the oldest idle one, then the oldest: a client whose
    /// request is already in (waiting for its thread on a loaded machine, or
    /// being answered), or who is about to send it, is not closed for
    /// sockets that send nothing and are opened again as soon as they are
    /// closed, however fast they are.
    pub fn close_oldest(&self, keep: Ticket) -> bool {
        let oldest = {
            let mut table = self.table();
            let Some(ticket) = choose(&table, keep) else {
                return false;
            };
            table.take(ticket)
        };
        // Its own thread, reading or writing, now sees the end at once.
        if let Some(socket) = oldest.and_then(|e| e.socket) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        self.note_eviction();
        true
    }

    /// Shuts every pending connection and takes no new one (the server is
    /// stopping): their threads, reading a head or waiting for a token, end
    /// at once.
    pub fn cut_all(&self) {
        let mut table = self.table();
        table.closed = true;
        let sockets: Vec<Arc<TcpStream>> = table
            .entries
            .values()
            .filter_map(|e| e.socket.clone())
            .collect();
        drop(table);
        for socket in sockets {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Notes a connection refused past the cap; logs at once if `ip` had no
    /// line in the last second, else later (see [`Pending::flush_logs`]).
    pub fn note_refusal(&self, ip: IpAddr) {
        let key = ClientKey::from(ip);
        let mut summaries = self.summaries.lock().unwrap_or_else(|e| e.into_inner());
        if !summaries.per_ip.contains_key(&key) && summaries.per_ip.len() >= MAX_LOGGED_IPS {
            summaries.others += 1;
            return;
        }
        let (summary, shown) = summaries.per_ip.entry(key).or_insert((None, ip));
        *shown = ip;
        count_and_log(summary, &|count| log_refusals(ip, count, self.cap));
    }

    fn note_eviction(&self) {
        let mut summaries = self.summaries.lock().unwrap_or_else(|e| e.into_inner());
        count_and_log(&mut summaries.evicted, &log_evictions);
    }

    /// A connection answered 503 because the OS would start no thread.
    pub fn note_no_thread(&self) {
        let mut summaries = self.summaries.lock().unwrap_or_else(|e| e.into_inner());
        count_and_log(&mut summaries.no_thread, &log_no_thread);
    }

    /// Writes the summary lines that are due (all of them when `all`, as the
    /// server stops) and forgets IPs that have gone quiet; the server calls
    /// this each second.
    pub fn flush_logs(&self, all: bool) {
        let now = Instant::now() + if all { LOG_EVERY } else { Duration::ZERO };
        let mut summaries = self.summaries.lock().unwrap_or_else(|e| e.into_inner());
        let cap = self.cap;
        summaries.per_ip.retain(|_, (summary, ip)| {
            let quiet =
                summary.is_some_and(|(last, n)| n == 0 && now.duration_since(last) >= LOG_EVERY);
            log_if_due(summary, now, &|count| log_refusals(*ip, count, cap));
            !quiet
        });
        if summaries.others > 0 {
            log::info!(
                "closed {} connections from further IPs past --max-pending-per-ip {cap}",
                summaries.others
            );
            summaries.others = 0;
        }
        log_if_due(&mut summaries.evicted, now, &log_evictions);
        log_if_due(&mut summaries.no_thread, now, &log_no_thread);
    }
}

/// Counts one more in `summary`, and writes its line if a second has passed
/// since the last (the first one at once).
fn count_and_log(summary: &mut Option<(Instant, u64)>, log: &dyn Fn(u64)) {
    let now = Instant::now();
    let (_, count) = summary.get_or_insert((now.checked_sub(LOG_EVERY).unwrap_or(now), 0));
    *count += 1;
    log_if_due(summary, now, log);
}

fn log_if_due(summary: &mut Option<(Instant, u64)>, now: Instant, log: &dyn Fn(u64)) {
    if let Some((last, count)) = summary.as_mut()
        && *count > 0
        && now.duration_since(*last) >= LOG_EVERY
    {
        log(*count);
        *last = now;
        *count = 0;
    }
}

fn log_refusals(ip: IpAddr, count: u64, cap: usize) {
    log::info!("{ip}: closed {count} connection(s) past --max-pending-per-ip {cap}");
}

fn log_no_thread(count: u64) {
    log::warn!("answered 503 to {count} connection(s): no thread");
}

fn log_evictions(count: u64) {
    log::info!(
        "closed {count} connection(s) not yet a session to make room (--max-connections reached)"
    );
}

#[cfg(test)]
mod tests;
