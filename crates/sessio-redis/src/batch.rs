//! Automatic pipelining: the commands that concurrent requests issue in one turn of the
//! scheduler go to Redis in one write, as one pipeline.
//!
//! A multiplexed connection writes each command as soon as its driver runs, and on a busy
//! Tokio worker the driver runs right after every request that woke it, so each command
//! costs a `write` system call here and a `read` in Redis. The batcher sits in front of the
//! connection: requests hand it their command and wait for their own reply; its task,
//! once woken, goes to the back of the run queue once, so that the other ready requests can
//! queue theirs, then sends everything queued as one pipeline. Replies are matched to commands by position, so each
//! request gets exactly its own reply (or error), and commands keep their order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::sync::{mpsc, oneshot};

struct Job {
    cmd: Cmd,
    /// Preceded by `CLIENT CACHING NO` in the same pipeline, so that Redis does not track
    /// the keys it reads (the connection tracks with `OPTOUT`).
    untracked: bool,
    reply: oneshot::Sender<RedisResult<Value>>,
}

/// A connection whose single commands are pipelined with those of concurrent requests.
/// Cheap to clone; the batching task ends when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
    conn: MultiplexedConnection,
    /// Whether this handle's commands ask Redis not to track the keys they read.
    untracked: bool,
    /// Writes sent so far (one per batch).
    #[cfg(test)]
    writes: Arc<AtomicU64>,
}

impl Batcher {
    /// Starts the batching task for `conn` on the current Tokio runtime.
    pub(crate) fn new(conn: MultiplexedConnection) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let writes = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(queue, conn.clone(), writes.clone()));
        Self {
            jobs,
            conn,
            untracked: false,
            #[cfg(test)]
            writes,
        }
    }

    /// A handle of the same connection whose commands have Redis not track the keys they
    /// read (`CLIENT CACHING NO` right before each, in the same write).
    pub(crate) fn untracked(&self) -> Self {
        Self {
            untracked: true,
            ..self.clone()
        }
    }

    /// Whether `self` and `other` are handles of one connection.
    pub(crate) fn same(&self, other: &Batcher) -> bool {
        self.jobs.same_channel(&other.jobs)
    }

    /// How many writes (batches) went to Redis so far.
    #[cfg(test)]
    fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

async fn run(
    mut queue: mpsc::UnboundedReceiver<Job>,
    conn: MultiplexedConnection,
    writes: Arc<AtomicU64>,
) {
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            job = queue.recv() => {
                let Some(job) = job else { break };
                // Let the requests queued now reach their Redis call first.
                requeue().await;
                let mut batch = vec![job];
                while let Ok(job) = queue.try_recv() {
                    batch.push(job);
                }
                writes.fetch_add(1, Ordering::Relaxed);
                in_flight.push(send(conn.clone(), batch));
            }
        }
    }
    while in_flight.next().await.is_some() {}
}

/// Puts the task at the back of the scheduler's run queue, once: it runs again right after
/// the tasks that are ready now. (Unlike `tokio::task::yield_now`, which on a busy worker
/// can wait for the next poll of the I/O driver, tens of tasks later.)
fn requeue() -> impl std::future::Future<Output = ()> {
    let mut queued = false;
    std::future::poll_fn(move |cx| {
        if queued {
            return std::task::Poll::Ready(());
        }
        queued = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
}

async fn send(mut conn: MultiplexedConnection, mut batch: Vec<Job>) {
    if let [Job {
        untracked: false, ..
    }] = batch.as_slice()
    {
        let job = batch.pop().expect("one job");
        let result = conn.req_packed_command(&job.cmd).await;
        let _ = job.reply.send(result);
        return;
    }
    let mut pipeline = Pipeline::with_capacity(batch.len());
    // For each command of the pipeline, who gets its reply (`None`: a CACHING prefix).
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        if job.untracked {
            pipeline.cmd("CLIENT").arg("CACHING").arg("NO");
            replies.push(None);
        }
        pipeline.add_command(job.cmd);
        replies.push(Some(job.reply));
    }
    // Server errors come back in place, as `Value::ServerError`, for each command's caller
    // to read (a script's NOSCRIPT, for instance); only a failed connection fails them all.
    match conn.req_packed_commands(&pipeline, 0, replies.len()).await {
        Ok(values) if values.len() == replies.len() => {
            for (reply, value) in replies.into_iter().zip(values) {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(value));
                }
            }
        }
        Ok(values) => {
            let error = RedisError::from((
                ErrorKind::Client,
                "pipeline answered with the wrong number of replies",
                format!("{} for {} commands", values.len(), replies.len()),
            ));
            for reply in replies.into_iter().flatten() {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Err(error) => {
            for reply in replies.into_iter().flatten() {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

impl ConnectionLike for Batcher {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                cmd: cmd.clone(),
                untracked: self.untracked,
                reply,
            };
            if self.jobs.send(job).is_err() {
                return Err(closed());
            }
            answer.await.unwrap_or_else(|_| Err(closed()))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        // Already a pipeline (the store's operations send none): straight to the
        // connection, so it may overtake single commands still queued.
        self.conn.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

fn closed() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the Redis connection's batching task has stopped",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessio_test_servers::RedisServer;

    // One worker, as in the benchmark. (Tasks woken by sockets, as requests are, also need
    // the batching task's requeue to queue their commands first; the benchmark's counts of
    // writes per request show that part.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn commands_of_concurrent_tasks_go_out_together_and_get_their_own_replies() {
        let server = RedisServer::start();
        let client = redis::Client::open(server.url()).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        let batcher = Batcher::new(conn);
        const N: usize = 200;
        let handle = batcher.clone();
        let replies = tokio::spawn(async move {
            // Spawned from the worker, like the tasks of requests that arrive together.
            let tasks: Vec<_> = (0..N)
                .map(|i| {
                    let mut conn = handle.clone();
                    tokio::spawn(async move {
                        redis::cmd("ECHO")
                            .arg(i.to_string())
                            .query_async::<String>(&mut conn)
                            .await
                    })
                })
                .collect();
            let mut replies = Vec::new();
            for task in tasks {
                replies.push(task.await.unwrap());
            }
            replies
        })
        .await
        .unwrap();
        for (i, reply) in replies.into_iter().enumerate() {
            assert_eq!(
                reply.unwrap(),
                i.to_string(),
                "command {i} got another's reply"
            );
        }
        let writes = batcher.writes();
        assert!(
            writes <= (N / 10) as u64,
            "{N} commands took {writes} writes"
        );

        // A server error answers its own command only.
        let (mut first, mut second) = (batcher.clone(), batcher.clone());
        let mut echo = redis::cmd("ECHO");
        echo.arg("ok");
        let unknown = redis::cmd("NO-SUCH-COMMAND");
        let (good, bad) = tokio::join!(
            echo.query_async::<String>(&mut first),
            unknown.query_async::<String>(&mut second),
        );
        assert_eq!(good.unwrap(), "ok");
        assert!(bad.is_err());
    }
}
