"""Publishing to the Redis Streams of the contract, once per job, atomically with the job's end."""

from __future__ import annotations

import json
import time

import redis

from ingest import keys
from ingest.config import Settings
from ingest.models import DeadLetter, Item, Job

# One script makes publishing idempotent and all-or-nothing: a worker killed before it returns
# has published nothing, and a re-run after it returned finds `published` set and does nothing.
# It also closes the job: counters, the in-flight set, and the run waiting on it.
_PUBLISH_LUA = """
local job_key, inflight, stats, stats_storyline, run_key, run_events =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local jid, payload, spec = ARGV[1], ARGV[2], cjson.decode(ARGV[3])
local prior = redis.call('HGET', job_key, 'published')
if prior then return {0, prior} end
local first
for _, stream in ipairs(spec.streams) do
  local entry = redis.call('XADD', stream, 'MAXLEN', '~', spec.maxlen, '*', 'data', payload)
  first = first or entry
end
if spec.index then
  redis.call('HSET', spec.index, spec.item_id, spec.streams[1] .. ' ' .. first)
  redis.call('EXPIRE', spec.index, spec.index_ttl, 'NX')
end
for _, s in ipairs(spec.storylines) do
  redis.call('SADD', s[2], spec.item_id)
  redis.call('HINCRBY', stats_storyline, s[1], 1)
  if run_key ~= '' then redis.call('HINCRBY', run_key, 'storyline:' .. s[1], 1) end
end
redis.call('HSET', job_key, 'published', first, 'state', 'done', 'outcome', spec.outcome,
           'item_id', spec.item_id, 'reason', spec.reason, 'detail', spec.detail,
           'storylines', spec.tags, 'finished', spec.now)
redis.call('EXPIRE', job_key, spec.ttl)
redis.call('ZREM', inflight, jid)
redis.call('HINCRBY', stats, spec.outcome, 1)
if spec.reason ~= '' then redis.call('HINCRBY', stats, 'reason:' .. spec.reason, 1) end
if run_key ~= '' then
  redis.call('HINCRBY', run_key, spec.outcome, 1)
  redis.call('RPUSH', run_events, jid)
  redis.call('EXPIRE', run_events, 86400)
end
return {1, first}
"""


class Publisher:
    """Writes items, duplicates and dead letters to their streams, exactly once per job."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.maxlen = settings.stream_maxlen
        self.ttl = int(settings.seen_ttl_days * 86400)
        self.index_span = settings.seen_ttl_days * 86400 / keys.ITEMS_INDEX_SLICES
        self._index_slice = -1  # the index slice this process last announced in ITEMS_INDEX_LIVE
        self._script = client.register_script(_PUBLISH_LUA)

    def item(self, job: Job, item: Item) -> bool:
        """Publish an accepted article or a duplicate; False if this job had already published."""
        if item.duplicate is None:
            outcome = "article"
            streams = [keys.ARTICLES] + [keys.storyline_stream(t.id) for t in item.storylines if t.on_storyline]
            marks = [t.id for t in item.storylines if t.on_storyline]
        else:
            outcome, streams, marks = "duplicate", [keys.DUPLICATES], []
        return self._publish(job, item.to_json(), outcome, item.id, streams, marks, "", "")

    def deadletter(self, job: Job, letter: DeadLetter) -> bool:
        """Publish a URL that could not be processed; False if this job had already published."""
        return self._publish(
            job, letter.to_json(), "deadletter", letter.id, [keys.DEADLETTER], [], letter.reason, letter.detail
        )

    def _publish(
        self,
        job: Job,
        payload: str,
        outcome: str,
        item_id: str,
        streams: list[str],
        marks: list[str],
        reason: str,
        detail: str,
    ) -> bool:
        now = time.time()
        index_slice = int(now // self.index_span)
        if index_slice != self._index_slice:  # once per slice and process: lookups learn where to read
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(keys.ITEMS_INDEX_LIVE, {str(index_slice): now + self.ttl + self.index_span})
            pipe.zremrangebyscore(keys.ITEMS_INDEX_LIVE, "-inf", now)
            pipe.execute()
            self._index_slice = index_slice
        spec = {
            "streams": streams,
            "storylines": [[sid, keys.storyline_published(sid)] for sid in marks],
            "outcome": outcome,
            "item_id": item_id,
            "reason": reason,
            "detail": detail[:500],
            "tags": ",".join(marks),
            "maxlen": self.maxlen,
            "ttl": self.ttl,
            "now": repr(time.time()),
            # item id -> its entry, so `ingest show ID` finds it without scanning streams
            "index": keys.items_index(index_slice),
            "index_ttl": int(self.ttl + self.index_span) + 1,
        }
        run_key = keys.run(job.run_id) if job.run_id else ""
        run_events = keys.run_events(job.run_id) if job.run_id else ""
        keys_ = [keys.job(job.job_id), keys.INFLIGHT, keys.STATS, keys.STATS_STORYLINE, run_key, run_events]
        created, _entry = self._script(keys=keys_, args=[job.job_id, payload, json.dumps(spec)])
        return bool(created)
