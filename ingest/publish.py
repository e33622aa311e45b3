"""Publishing to the Redis Streams of the contract, once per job, atomically with the job's end."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import redis

from ingest import keys
from ingest.config import Settings
from ingest.dedup import CLAIM_ARGS, Candidate, Claim, DedupIndex, Fingerprint, parse_claim
from ingest.models import DeadLetter, Item, Job
from ingest.redisutil import text
from ingest.web import indexes

# One script makes publishing idempotent and all-or-nothing: a worker killed before it returns
# has published nothing, and a re-run after it returned finds `published` set and does nothing.
# It also closes the job: counters, the in-flight set, and the run waiting on it.
_PUBLISH_FN = """
local function publish(keys_, jid, payload, spec)
  local job_key, inflight, stats, stats_storyline, run_key, run_events =
    keys_[1], keys_[2], keys_[3], keys_[4], keys_[5], keys_[6]
  local prior = redis.call('HGET', job_key, 'published')
  if prior then return {0, prior} end
  local first
  for _, stream in ipairs(spec.streams) do
    local entry = redis.call('XADD', stream, 'MAXLEN', '~', spec.maxlen, '*', 'data', payload)
    first = first or entry
  end
  if spec.index then
    redis.call('HSET', spec.index, spec.item_id, spec.streams[1] .. ' ' .. first)
    -- EXPIRE ... NX needs Redis 7; the embedded server is 6.2
    if redis.call('TTL', spec.index) < 0 then redis.call('EXPIRE', spec.index, spec.index_ttl) end
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
end
"""

_PUBLISH_LUA = _PUBLISH_FN + "return publish(KEYS, ARGV[1], ARGV[2], cjson.decode(ARGV[3]))\n"

# The dedup claim and the publishing by its decision in one script, so an article costs one EVALSHA:
# the claim script (ingest/dedup_claim.lua) ends by calling CLAIMED with its decision. The client
# sends the item as it is if new, cut around its id and its `duplicate` value; a duplicate gets
# the id and provenance the claim decided, written as Item.to_json() writes them (the tests
# compare the two), and goes to the duplicates stream instead of the articles and storylines.
_CLAIMED_FN = """
local function pyfloat(x)
  -- a score as Python writes round(x, 3): shortest form, at least one decimal
  local s = string.gsub(string.format('%.3f', x), '0+$', '')
  if string.sub(s, -1) == '.' then s = s .. '0' end
  return s
end
local function CLAIMED(encoded, decision)
  decision = decision or cjson.decode(encoded)
  local at = CLAIM_ARGS
  local jid, head, middle, tail, spec = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4],
    cjson.decode(ARGV[at + 5])
  local dup, dup_json = decision.dup, 'null'
  spec.item_id = decision.id
  if dup then
    dup_json = '{"of":' .. cjson.encode(dup.of) .. ',"method":' .. cjson.encode(dup.method) ..
      ',"score":' .. pyfloat(math.min(1, dup.score)) .. ',"changes":' ..
      (dup.changes and cjson.encode(dup.changes) or 'null') .. '}'
    spec.outcome, spec.streams, spec.storylines, spec.tags = 'duplicate', {spec.duplicates}, {}, ''
  end
  local payload = head .. cjson.encode(decision.id) .. middle .. dup_json .. tail
  local done = publish(KEYS, jid, payload, spec)
  return {done[1], done[2], encoded}
end
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
        self._claimed: dict[str, Any] = {}  # claim-and-publish script by the claim script it wraps

    def claim_and_publish(
        self,
        job: Job,
        index: DedupIndex,
        cand: Candidate,
        fp: Fingerprint,
        item: Item,
        timings: Mapping[str, float] | None = None,
    ) -> tuple[Claim, bool]:
        """Claim an article in the dedup index and publish it by the decision, in one script.

        item is the article as it is published if new (id cand.item_id, no duplicate). Returns the
        claim and False if this job had already published.
        """
        if item.id != cand.item_id or item.duplicate is not None:
            raise ValueError("claim_and_publish takes the item as it is if new")
        script = self._claimed.get(index.claim_source)
        if script is None:
            source = _PUBLISH_FN + f"local CLAIM_ARGS = {CLAIM_ARGS}\n" + _CLAIMED_FN + index.claim_source
            script = self._claimed[index.claim_source] = self.redis.register_script(source)
        data = item.to_json()
        id_at = data.index('"id":') + len('"id":')
        id_end = id_at + len(json.dumps(item.id))
        dup_at = data.index(',"duplicate":null', id_end) + len(',"duplicate":')
        spec = self._spec("article", item.id, self._article_streams(item), self._marks(item), "", "")
        spec["duplicates"] = keys.DUPLICATES
        args = [
            *index.claim_args(keys.job(job.job_id), cand, fp),
            job.job_id,
            data[:id_at],
            data[id_end:dup_at],
            data[dup_at + len("null") :],
            json.dumps(spec),
        ]
        started = time.perf_counter()
        created, entry, decision = script(keys=self._keys(job), args=args)
        claim = parse_claim(decision)
        if created:
            published = (
                item if claim.accepted else item.model_copy(update={"id": claim.item_id, "duplicate": claim.duplicate})
            )
            # one script claims and publishes: its time is counted as the publish stage's
            stages = {**(timings or {}), "publish": time.perf_counter() - started}
            indexes.record(self.redis, text(entry), self.maxlen, item=published, timings=stages)
        return claim, bool(created)

    def item(self, job: Job, item: Item, timings: Mapping[str, float] | None = None) -> bool:
        """Publish an accepted article or a duplicate; False if this job had already published."""
        started = time.perf_counter()
        if item.duplicate is None:
            outcome, streams, marks = "article", self._article_streams(item), self._marks(item)
        else:
            outcome, streams, marks = "duplicate", [keys.DUPLICATES], []
        entry = self._publish(job, item.to_json(), self._spec(outcome, item.id, streams, marks, "", ""))
        if entry:
            stages = {**(timings or {}), "publish": time.perf_counter() - started}
            indexes.record(self.redis, entry, self.maxlen, item=item, timings=stages)
        return bool(entry)

    def deadletter(self, job: Job, letter: DeadLetter) -> bool:
        """Publish a URL that could not be processed; False if this job had already published."""
        spec = self._spec("deadletter", letter.id, [keys.DEADLETTER], [], letter.reason, letter.detail)
        entry = self._publish(job, letter.to_json(), spec)
        if entry:
            indexes.record(self.redis, entry, self.maxlen, letter=letter)
        return bool(entry)

    @staticmethod
    def _marks(item: Item) -> list[str]:
        return [t.id for t in item.storylines if t.on_storyline]

    def _article_streams(self, item: Item) -> list[str]:
        return [keys.ARTICLES] + [keys.storyline_stream(sid) for sid in self._marks(item)]

    def _spec(
        self, outcome: str, item_id: str, streams: list[str], marks: list[str], reason: str, detail: str
    ) -> dict[str, Any]:
        now = time.time()
        index_slice = int(now // self.index_span)
        if index_slice != self._index_slice:  # once per slice and process: lookups learn where to read
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(keys.ITEMS_INDEX_LIVE, {str(index_slice): now + self.ttl + self.index_span})
            pipe.zremrangebyscore(keys.ITEMS_INDEX_LIVE, "-inf", now)
            pipe.execute()
            self._index_slice = index_slice
        return {
            "streams": streams,
            "storylines": [[sid, keys.storyline_published(sid)] for sid in marks],
            "outcome": outcome,
            "item_id": item_id,
            "reason": reason,
            "detail": detail[:500],
            "tags": ",".join(marks),
            "maxlen": self.maxlen,
            "ttl": self.ttl,
            "now": repr(now),
            # item id -> its entry, so `ingest show ID` finds it without scanning streams
            "index": keys.items_index(index_slice),
            "index_ttl": int(self.ttl + self.index_span) + 1,
        }

    @staticmethod
    def _keys(job: Job) -> list[str]:
        run_key = keys.run(job.run_id) if job.run_id else ""
        run_events = keys.run_events(job.run_id) if job.run_id else ""
        return [keys.job(job.job_id), keys.INFLIGHT, keys.STATS, keys.STATS_STORYLINE, run_key, run_events]

    def _publish(self, job: Job, payload: str, spec: dict[str, Any]) -> str | None:
        """Run the publish script; the first entry id if this call published, None if it had been done."""
        created, entry = self._script(keys=self._keys(job), args=[job.job_id, payload, json.dumps(spec)])
        return text(entry) if created else None
