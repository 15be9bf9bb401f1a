//! The libp2p request-response codec of the sync protocol: a `u32` length, then the message
//! bytes of `sync::wire`. Lengths are checked before any buffer is allocated. Whatever the peer
//! got wrong (a length over the bound, a frame cut short, bytes that do not decode) is
//! `io::ErrorKind::InvalidData` and nothing else is, so the swarm task can tell a malformed
//! answer from a failed stream.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use crate::sync::wire::{self, Request, Response, MESSAGE_MAX_BYTES};

/// Largest request: a status with every head (4096 × at most 81 bytes) and framing.
pub const REQUEST_MAX_BYTES: usize = 512 * 1024;

// The largest valid status request fits: tag, network id, charter version, digest, known
// digest, body kind, head count, heads.
const _: () = assert!(
    1 + 32 + 4 + 32 + 32 + 1 + 2 + wire::STATUS_HEADS_MAX * (1 + crate::document::OrgId::LEN_MAX + 8 + 32 + 8)
        <= REQUEST_MAX_BYTES
);

/// An inbound request as read off the wire. A frame that is not a valid request (garbage, over
/// the size bound) is reported as `Malformed` rather than as an error: libp2p's request-response
/// drops `read_request` errors without telling the behaviour, so the node could not penalize
/// the sender (found by tests/hostile.rs).
#[derive(Debug)]
pub enum WireRequest {
    Valid(Request),
    Malformed(String),
}

/// The sync protocol codec. It counts every byte it reads and writes (length prefixes
/// included), which is the sync traffic a node reports, and what it writes by message.
#[derive(Debug, Clone, Default)]
pub struct SyncCodec {
    pub read: Arc<AtomicU64>,
    pub written: Arc<AtomicU64>,
    pub by_message: Arc<SyncTraffic>,
}

/// Sync bytes written (framing included) by message kind and role: what a node's sync traffic
/// is spent on. A status is counted apart by whether it carried the heads or only their digest.
#[derive(Debug, Default)]
pub struct SyncTraffic {
    written: [AtomicU64; 2 * SyncTraffic::KINDS.len()],
}

impl SyncTraffic {
    /// The message kinds, as metric labels.
    pub const KINDS: [&'static str; 9] = [
        "hello",
        "status_digest",
        "status_heads",
        "range",
        "refused",
        "charters",
        "fork_proofs",
        "payloads",
        "checkpoints",
    ];

    fn kind_of_request(req: &Request) -> usize {
        match req {
            Request::Hello { .. } => 0,
            Request::Status(s) => Self::kind_of_status(s),
            Request::Range { .. } => 3,
            Request::Charters { .. } => 5,
            Request::ForkProofs { .. } => 6,
            Request::Payloads { .. } => 7,
            Request::Checkpoints { .. } => 8,
        }
    }

    fn kind_of_response(res: &Response) -> usize {
        match res {
            Response::Hello { .. } => 0,
            Response::Status(s) => Self::kind_of_status(s),
            Response::Range { .. } => 3,
            Response::Refused { .. } => 4,
            Response::Charters { .. } => 5,
            Response::ForkProofs { .. } => 6,
            Response::Payloads { .. } => 7,
            Response::Checkpoints { .. } => 8,
        }
    }

    fn kind_of_status(s: &wire::Status) -> usize {
        if s.heads.is_some() {
            2
        } else {
            1
        }
    }

    fn add(&self, response: bool, kind: usize, bytes: usize) {
        self.written[response as usize * Self::KINDS.len() + kind].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Bytes written so far: `(kind, as requests, as responses)` for every kind.
    pub fn written(&self) -> Vec<(&'static str, u64, u64)> {
        let n = Self::KINDS.len();
        let at = |i: usize| self.written[i].load(Ordering::Relaxed);
        Self::KINDS.iter().enumerate().map(|(k, name)| (*name, at(k), at(n + k))).collect()
    }
}

/// Reads into `buf` until it is full or the stream ends; how many bytes were read.
async fn read_full<T: AsyncRead + Unpin + Send>(io: &mut T, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match io.read(&mut buf[got..]).await {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads one frame. What the sender got wrong is `InvalidData` (the length is over `max`, or
/// the stream ended after the frame began and before the length it declared), which the swarm
/// task reports as malformed; a stream that ends before the frame's first byte is
/// `UnexpectedEof` (a peer that chose not to answer, or a stream libp2p closed), and other
/// I/O errors stay as they are (docs/PROTOCOL.md §8.2).
async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize, counter: &AtomicU64) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    let got = read_full(io, &mut len).await?;
    counter.fetch_add(got as u64, Ordering::Relaxed);
    match got {
        0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "sync stream ended before a message")),
        1..=3 => return Err(invalid_data(format!("sync stream ended {got} bytes into a length prefix"))),
        _ => {}
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(invalid_data(format!("sync message of {len} bytes exceeds {max}")));
    }
    let mut buf = vec![0u8; len];
    let got = read_full(io, &mut buf).await?;
    counter.fetch_add(got as u64, Ordering::Relaxed);
    if got < len {
        return Err(invalid_data(format!("sync message of {len} bytes ended after {got}")));
    }
    Ok(buf)
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8], counter: &AtomicU64) -> io::Result<usize> {
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    counter.fetch_add(4 + bytes.len() as u64, Ordering::Relaxed);
    io.close().await?;
    Ok(4 + bytes.len())
}

fn invalid(e: wire::WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[async_trait]
impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = WireRequest;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<WireRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        // An over-long length prefix is refused before its body is read, and a frame cut short
        // of its declared length is the sender's doing; a stream that ends before its first
        // byte, or fails, stays an error (libp2p then drops it without telling the node).
        let frame = match read_frame(io, REQUEST_MAX_BYTES, &self.read).await {
            Ok(frame) => frame,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(WireRequest::Malformed(e.to_string())),
            Err(e) => return Err(e),
        };
        Ok(match wire::decode_request(&frame) {
            Ok(request) => WireRequest::Valid(request),
            Err(e) => WireRequest::Malformed(e.to_string()),
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        wire::decode_response(&read_frame(io, MESSAGE_MAX_BYTES, &self.read).await?).map_err(invalid)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: WireRequest) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            WireRequest::Valid(req) => {
                let written = write_frame(io, &wire::encode_request(&req), &self.written).await?;
                self.by_message.add(false, SyncTraffic::kind_of_request(&req), written);
                Ok(())
            }
            WireRequest::Malformed(_) => Err(io::Error::other("a malformed request is never sent")),
        }
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Response) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let written = write_frame(io, &wire::encode_response(&res), &self.written).await?;
        self.by_message.add(true, SyncTraffic::kind_of_response(&res), written);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::request_response::Codec;
    use std::collections::BTreeMap;

    fn read(bytes: Vec<u8>) -> io::Result<Response> {
        let mut io = futures::io::Cursor::new(bytes);
        futures::executor::block_on(SyncCodec::default().read_response(&StreamProtocol::new("/t"), &mut io))
    }

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut out = (msg.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(msg);
        out
    }

    #[test]
    fn an_answer_the_peer_got_wrong_is_invalid_data_and_an_unanswered_stream_is_not() {
        let range = wire::encode_response(&Response::Range { docs: vec![vec![1; 100]] });
        assert!(read(framed(&range)).is_ok());
        let kind = |bytes: Vec<u8>| read(bytes).unwrap_err().kind();
        // Declares a length, then ends early.
        let mut cut = framed(&range);
        cut.truncate(cut.len() - 10);
        assert_eq!(kind(cut), io::ErrorKind::InvalidData, "a frame cut short of its length");
        assert_eq!(kind(vec![0, 0]), io::ErrorKind::InvalidData, "a frame cut in its length prefix");
        assert_eq!(kind(u32::MAX.to_be_bytes().to_vec()), io::ErrorKind::InvalidData, "a length over the bound");
        assert_eq!(kind(framed(b"garbage")), io::ErrorKind::InvalidData, "bytes that do not decode");
        let mut big_doc = vec![2, 0, 0, 0, 1];
        big_doc.extend_from_slice(&(crate::document::DOCUMENT_SIZE_MAX_BYTES as u32 + 1).to_be_bytes());
        assert_eq!(kind(framed(&big_doc)), io::ErrorKind::InvalidData, "an envelope over 1 MiB in a range");
        // Nothing at all: the peer closed the stream without answering.
        assert_eq!(kind(Vec::new()), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn written_bytes_are_counted_by_message_kind_and_role() {
        let codec = SyncCodec::default();
        let protocol = StreamProtocol::new("/t");
        let status = |heads| wire::Status::compose([7; 32], 0, heads, wire::HeadsDigest::NONE, wire::HeadsDigest::NONE);
        let head = wire::FeedHead {
            org: crate::document::OrgId::new("WCO").unwrap(),
            seq: crate::document::Seq(3),
            id: crate::document::DocumentId([1; 32]),
            forked_at: None,
        };
        let with_heads = status(vec![head.clone()]);
        assert!(with_heads.heads.is_some());
        let mut digest_only = with_heads.clone();
        digest_only.heads = None;
        let write_request = |req: Request| {
            let mut out = futures::io::Cursor::new(Vec::new());
            futures::executor::block_on(codec.clone().write_request(&protocol, &mut out, WireRequest::Valid(req)))
                .unwrap();
            out.into_inner().len() as u64
        };
        let heads_bytes = write_request(Request::Status(with_heads));
        let digest_bytes = write_request(Request::Status(digest_only.clone()));
        let mut out = futures::io::Cursor::new(Vec::new());
        futures::executor::block_on(codec.clone().write_response(&protocol, &mut out, Response::Status(digest_only)))
            .unwrap();
        let written: BTreeMap<_, _> = codec.by_message.written().into_iter().map(|(k, q, r)| (k, (q, r))).collect();
        assert_eq!(written["status_heads"], (heads_bytes, 0));
        assert_eq!(written["status_digest"], (digest_bytes, out.into_inner().len() as u64));
        assert!(heads_bytes > digest_bytes);
        assert_eq!(written.values().map(|(q, r)| q + r).sum::<u64>(), codec.written.load(Ordering::Relaxed));
        assert_eq!(written["range"], (0, 0));
    }
}
