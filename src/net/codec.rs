//! The libp2p request-response codec of the sync protocol: a `u32` length, then the message
//! bytes of `sync::wire`. Lengths are checked before any buffer is allocated.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use crate::sync::wire::{self, Request, Response, MESSAGE_MAX_BYTES};

/// Largest request: a status with every head (4096 × 73 bytes) and framing.
const REQUEST_MAX_BYTES: usize = 512 * 1024;

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
/// included), which is the sync traffic a node reports.
#[derive(Debug, Clone, Default)]
pub struct SyncCodec {
    pub read: Arc<AtomicU64>,
    pub written: Arc<AtomicU64>,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize, counter: &AtomicU64) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("sync message of {len} bytes exceeds {max}")));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    counter.fetch_add(4 + len as u64, Ordering::Relaxed);
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8], counter: &AtomicU64) -> io::Result<()> {
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    counter.fetch_add(4 + bytes.len() as u64, Ordering::Relaxed);
    io.close().await
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
        // An over-long length prefix is refused before its body is read; a cut stream (EOF,
        // reset) stays an error, since an honest peer can suffer it.
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
            WireRequest::Valid(req) => write_frame(io, &wire::encode_request(&req), &self.written).await,
            WireRequest::Malformed(_) => Err(io::Error::other("a malformed request is never sent")),
        }
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Response) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &wire::encode_response(&res), &self.written).await
    }
}
