//! `kind = "kafka"`: records into Kafka topics with `rskafka` (pure Rust: no librdkafka C
//! build). The topic is a template on the row (`logs-{tenant}`), the record key is the
//! host, and the partition follows the key, so each host's rows stay in order. The value
//! is the row as a JSON document, the `infralog.row_id` header its identity in the spool,
//! and the batches are zstd-compressed. A topic that does not exist is created with
//! `partitions` partitions. Delivery is at least once: the cursor moves once the broker
//! acknowledged the produce request, and a request that failed after the broker stored
//! it is sent again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

use super::config::{KafkaOptions, SinkConfig};
use super::doc::{Rfc3339, Rows};
use super::stats::SinkStats;
use super::template::Template;
use super::{Batch, Context, Sink, SinkError, row_id};

/// Kafka's default limit of a produce request is 1 MB: records are sent in chunks below it.
const CHUNK_BYTES: usize = 768 << 10;

pub struct Kafka {
    brokers: Vec<String>,
    topic: Template,
    partitions: i32,
    tenant_field: String,
    default_tenant: String,
    timeout: Duration,
    /// Taken while a batch is sent (the client lives on it).
    rt: Option<tokio::runtime::Runtime>,
    client: Option<Client>,
    /// Partition clients of each topic, by partition index.
    topics: HashMap<String, Vec<PartitionClient>>,
    ctx: Context,
    stats: Arc<SinkStats>,
}

/// FNV-1a of the key: the partition of a host (stable across restarts and versions).
fn partition_of(key: &str, partitions: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % partitions.max(1) as u64) as usize
}

impl Kafka {
    pub fn new(
        config: &SinkConfig,
        o: &KafkaOptions,
        ctx: Context,
        stats: Arc<SinkStats>,
    ) -> Result<Kafka> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the Kafka runtime")?;
        Ok(Kafka {
            brokers: o.brokers.clone(),
            topic: Template::parse(&o.topic)?,
            partitions: o.partitions,
            tenant_field: config.tenant_field.clone(),
            default_tenant: config.default_tenant.clone(),
            timeout: config.timeout,
            rt: Some(rt),
            client: None,
            topics: HashMap::new(),
            ctx,
            stats,
        })
    }

    async fn connect(&mut self) -> Result<(), SinkError> {
        if self.client.is_some() {
            return Ok(());
        }
        let backoff = rskafka::BackoffConfig {
            deadline: Some(self.timeout),
            ..Default::default()
        };
        let client = tokio::time::timeout(
            self.timeout,
            ClientBuilder::new(self.brokers.clone())
                .client_id("infralog")
                .backoff_config(backoff)
                .build(),
        )
        .await
        .map_err(|_| {
            SinkError::Unreachable(anyhow!("no Kafka broker of {:?} answered", self.brokers))
        })?
        .map_err(|e| {
            SinkError::Unreachable(anyhow!(e).context(format!("Kafka brokers {:?}", self.brokers)))
        })?;
        self.client = Some(client);
        Ok(())
    }

    /// The partition clients of `topic`, creating the topic if it does not exist.
    async fn partitions(&mut self, topic: &str) -> Result<&[PartitionClient]> {
        if !self.topics.contains_key(topic) {
            let client = self.client.as_ref().expect("connected");
            let mut found = client
                .list_topics()
                .await?
                .into_iter()
                .find(|t| t.name == topic)
                .map(|t| t.partitions.len() as i32);
            if found.is_none() {
                let created = client
                    .controller_client()?
                    .create_topic(topic, self.partitions, 1, self.timeout.as_millis() as i32)
                    .await;
                match created {
                    Ok(()) => {
                        tracing::info!(topic, partitions = self.partitions, "Kafka topic created")
                    }
                    // Created meanwhile by someone else: use it.
                    Err(e) => tracing::debug!(topic, "create_topic: {e}"),
                }
                found = Some(self.partitions);
            }
            let mut clients = Vec::new();
            for p in 0..found.unwrap_or(1).max(1) {
                clients.push(
                    client
                        .partition_client(topic, p, UnknownTopicHandling::Retry)
                        .await
                        .with_context(|| format!("partition {p} of {topic}"))?,
                );
            }
            self.topics.insert(topic.to_string(), clients);
        }
        Ok(&self.topics[topic])
    }

    async fn send(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.connect().await?;
        // (topic, partition) → records, in spool order.
        let mut groups: BTreeMap<(String, usize), Vec<Record>> = BTreeMap::new();
        let mut clock = Rfc3339::default();
        let (mut topic, mut id) = (String::new(), String::new());
        for s in &batch.slices {
            let rows = Rows::new(&s.batch).map_err(SinkError::Failed)?;
            for i in 0..rows.len() {
                let tenant = rows
                    .field(i, &self.tenant_field)
                    .filter(|t| !t.is_empty())
                    .unwrap_or(&self.default_tenant);
                self.topic.render(&mut topic, tenant, rows.micros(i), |f| {
                    rows.field(i, f).map(str::to_string)
                });
                let host = rows.field(i, infralog_schemas::col::HOSTNAME).unwrap_or("");
                let n = match self.partitions(&topic).await {
                    Ok(p) => p.len(),
                    Err(e) => {
                        self.client = None;
                        self.topics.clear();
                        return Err(SinkError::Failed(e));
                    }
                };
                let mut value = Vec::with_capacity(256);
                rows.write_json(i, &mut value, None, &mut clock);
                row_id(&mut id, &self.ctx.instance, s.seq, s.record, s.row(i));
                let record = Record {
                    key: Some(host.as_bytes().to_vec()),
                    value: Some(value),
                    headers: BTreeMap::from([(
                        "infralog.row_id".to_string(),
                        id.as_bytes().to_vec(),
                    )]),
                    timestamp: chrono::DateTime::from_timestamp_micros(rows.micros(i))
                        .unwrap_or_default(),
                };
                groups
                    .entry((topic.clone(), partition_of(host, n)))
                    .or_default()
                    .push(record);
            }
        }
        for ((topic, p), records) in groups {
            let mut chunk = Vec::new();
            let mut size = 0;
            let mut all = records.into_iter().peekable();
            while let Some(r) = all.next() {
                size += r.approximate_size();
                chunk.push(r);
                if size >= CHUNK_BYTES || all.peek().is_none() {
                    let n = chunk.len() as u64;
                    let client = &self.topics[&topic][p];
                    let sent = tokio::time::timeout(
                        self.timeout,
                        client.produce(std::mem::take(&mut chunk), Compression::Zstd),
                    )
                    .await;
                    self.stats.sent.fetch_add(n, Ordering::Relaxed);
                    match sent {
                        Ok(Ok(_offsets)) => {
                            self.stats.acked.fetch_add(n, Ordering::Relaxed);
                        }
                        Ok(Err(e)) => {
                            self.client = None;
                            self.topics.clear();
                            return Err(SinkError::Failed(
                                anyhow!(e).context(format!("produce to {topic}/{p}")),
                            ));
                        }
                        Err(_) => {
                            self.client = None;
                            self.topics.clear();
                            return Err(SinkError::Failed(anyhow!(
                                "produce to {topic}/{p} timed out"
                            )));
                        }
                    }
                    size = 0;
                }
            }
        }
        Ok(())
    }
}

impl Sink for Kafka {
    fn deliver(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let rt = self
            .rt
            .take()
            .expect("the runtime is back after each batch");
        let result = rt.block_on(self.send(batch));
        self.rt = Some(rt);
        result
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_host_always_lands_in_the_same_partition() {
        let p = super::partition_of("web-01", 6);
        assert!(p < 6);
        for _ in 0..3 {
            assert_eq!(super::partition_of("web-01", 6), p);
        }
        assert_eq!(super::partition_of("x", 1), 0);
    }
}
