//! The two ends of an in-process connection: a pipe per direction, shaped by its link model,
//! with a socket buffer's backpressure and a reset when cut.

use super::*;

/// One connection: two pipes between node `a` (the dialer) and node `b`.
pub(super) struct Conn {
    pub(super) a: usize,
    pub(super) b: usize,
    pub(super) a_to_b: Pipe,
    pub(super) b_to_a: Pipe,
}

impl Conn {
    pub(super) fn cut(&self) {
        self.a_to_b.cut();
        self.b_to_a.cut();
    }
}

pub(super) struct Pipe {
    state: Mutex<PipeState>,
}

struct PipeState {
    link: LinkModel,
    /// Chunks written and not yet read, each with its arrival time and how much was read.
    queue: VecDeque<(Instant, Vec<u8>, usize)>,
    unread_bytes: usize,
    writer_closed: bool,
    reader_gone: bool,
    cut: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    pub(super) fn new(link: LinkModel) -> Pipe {
        Pipe {
            state: Mutex::new(PipeState {
                link,
                queue: VecDeque::new(),
                unread_bytes: 0,
                writer_closed: false,
                reader_gone: false,
                cut: false,
                reader: None,
                writer: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cut(&self) {
        let mut p = self.lock();
        p.cut = true;
        p.queue.clear();
        p.unread_bytes = 0;
        p.wake_both();
    }
}

impl PipeState {
    fn wake_both(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection reset (partition or crash)")
}

/// One end of a connection.
pub struct MemStream {
    pub(super) conn: Arc<Conn>,
    pub(super) dialer: bool,
    /// Wakes the reader when the next chunk arrives.
    pub(super) timer: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(super) net: Arc<Shared>,
}

impl MemStream {
    fn outgoing(&self) -> &Pipe {
        if self.dialer {
            &self.conn.a_to_b
        } else {
            &self.conn.b_to_a
        }
    }

    fn incoming(&self) -> &Pipe {
        if self.dialer {
            &self.conn.b_to_a
        } else {
            &self.conn.a_to_b
        }
    }

    fn node(&self) -> usize {
        if self.dialer {
            self.conn.a
        } else {
            self.conn.b
        }
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut p = this.outgoing().lock();
        if p.cut {
            return Poll::Ready(Err(reset()));
        }
        if p.reader_gone || p.writer_closed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the other end has closed")));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = WINDOW_BYTES - p.unread_bytes.min(WINDOW_BYTES);
        if room == 0 {
            p.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(room).min(CHUNK_MAX_BYTES);
        let arrival = p.link.send(Instant::now(), n);
        p.queue.push_back((arrival, buf[..n].to_vec(), 0));
        p.unread_bytes += n;
        if let Some(w) = p.reader.take() {
            w.wake();
        }
        this.net.sent[this.node()].fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut p = self.outgoing().lock();
        p.writer_closed = true;
        if let Some(w) = p.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for MemStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Once the timer has fired the front chunk is due, whatever the clocks' rounding.
        let mut due_by_timer = false;
        loop {
            let mut p = this.incoming().lock();
            if p.cut {
                return Poll::Ready(Err(reset()));
            }
            let now = Instant::now();
            let Some((arrival, data, read)) = p.queue.front_mut() else {
                if p.writer_closed {
                    return Poll::Ready(Ok(0));
                }
                p.reader = Some(cx.waker().clone());
                return Poll::Pending;
            };
            if *arrival <= now || due_by_timer {
                let n = buf.len().min(data.len() - *read);
                buf[..n].copy_from_slice(&data[*read..*read + n]);
                *read += n;
                if *read == data.len() {
                    p.queue.pop_front();
                }
                p.unread_bytes -= n;
                if let Some(w) = p.writer.take() {
                    w.wake();
                }
                drop(p);
                this.timer = None;
                this.net.received[this.node()].fetch_add(n as u64, Ordering::Relaxed);
                return Poll::Ready(Ok(n));
            }
            let deadline = tokio::time::Instant::from_std(*arrival);
            p.reader = Some(cx.waker().clone());
            drop(p);
            let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => due_by_timer = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for MemStream {
    fn drop(&mut self) {
        {
            let mut out = self.outgoing().lock();
            out.writer_closed = true;
            if let Some(w) = out.reader.take() {
                w.wake();
            }
        }
        let mut inc = self.incoming().lock();
        inc.reader_gone = true;
        inc.queue.clear();
        inc.unread_bytes = 0;
        if let Some(w) = inc.writer.take() {
            w.wake();
        }
    }
}
