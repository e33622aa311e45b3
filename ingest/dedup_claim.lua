-- Atomic dedup claim (see ingest/dedup.py for the layout). One call decides whether an article
-- is new or a duplicate and, when new, indexes it; Redis runs it alone, so racing workers with
-- two copies of one article are serialised and exactly one copy is accepted.
-- Idempotent per job: a re-run after a crash returns the decision recorded the first time.
--
-- Cost model (measured on the benchmark machine): every redis.call costs about a microsecond,
-- every key or field looked up a few cache misses, whatever the command does, and every string
-- that enters Lua is hashed byte by byte. So the fingerprint buckets of a claim are read with ONE
-- HMGET and written with ONE HSET, the client sends the bucket names ready-made (building strings
-- in Lua costs as much as a command), and a claim reads no more buckets than it needs.
--
-- DedupIndex prepends the index's constants (PREFIX, SEQ_KEY, GENS_KEY, SEED_GEN, LIVE_FP,
-- SEED_FP, WINDOW, SPAN, RETENTION, THRESHOLD, MIN_MATCHES, CAP, FIELD_BYTES, SENTINEL) from its
-- settings, so ARGV carries only the article: every argument costs the client and Redis alike.
-- It also prepends CLAIMED(encoded, decision), which the script returns with the decision: the
-- decision itself for a claim alone, or the publishing of the article by that decision when the
-- claim and the publishing go in one script (ingest/publish.py: one EVALSHA per article).
local find, sub, call = string.find, string.sub, redis.call

local job_key = ARGV[1]
local prior = call('HGET', job_key, 'claim')
if prior then return CLAIMED(prior) end

local current, seed = tonumber(ARGV[2]), ARGV[3] == '1'
local record, item_id, revision_id = ARGV[4], ARGV[5], ARGV[6]
local q_range, n_stored, blob = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local url_shard, url_field = ARGV[10], ARGV[11]
local content_shard, content_field = ARGV[12], ARGV[13]
-- blob: the n samples as 8 big-endian bytes each, then the hash field (bucket) of each as 4 bytes
local n_samples = #blob / 12
local buckets = {}
for i = 1, n_samples do buckets[i] = sub(blob, 8 * n_samples + 4 * i - 3, 8 * n_samples + 4 * i) end
local host, title, text_len = struct.unpack('>III', record)

local function key(g, tbl, shard) return PREFIX .. g .. ':' .. tbl .. ':' .. shard end
local function expiry(g) return math.ceil((g + 1) * SPAN + RETENTION) end

-- Generations. Seed claims see only seeds. Others see seeds and the generations of the retention
-- window that hold something, newest first: the scores of the generations set are their expiry
-- times, which order them, so one range query finds them.
local gens = {SEED_GEN}
if not seed then
  local found = call('ZRANGEBYSCORE', GENS_KEY, expiry(current - WINDOW), expiry(current))
  for i = #found, 1, -1 do gens[#gens + 1] = found[i] end
end

-- Fingerprint records carry a one-byte generation tag: tag(g) for generation g, '\0' for seeds.
local SEED = '\0'
local function tag(g) return string.char(g % 255 + 1) end
local mine = seed and SEED or tag(current)
local live = {[SEED] = SEED_GEN} -- tag -> generation name, for the tags a claim reads
for i = 2, #gens do live[tag(tonumber(gens[i]))] = gens[i] end
local keep = {[SEED] = true} -- tags a rewrite keeps: the window and one generation ahead
for g = current - WINDOW, current + 1 do keep[tag(g)] = true end

-- exact tables: first generation (seed, then newest first) holding the digest
local function lookup(tbl, shard, field, first)
  for i = first, #gens do
    local v = call('HGET', key(gens[i], tbl, shard), field)
    if v then return tonumber(v), gens[i] end
  end
  return nil, nil
end

local doc_shards = 65536
local function doc_key(g, doc)
  return key(g, 'doc', string.format('%x', doc % doc_shards)), tostring(math.floor(doc / doc_shards))
end

local function read_doc(g, doc)
  local k, f = doc_key(g, doc)
  local rec = call('HGET', k, f)
  if not rec then return nil end
  local r_host, r_title, r_len, r_n, r_teff = struct.unpack('>IIIBH', rec)
  local packed = math.ceil(r_n / 2) -- where each sample lies below teff, in sixteenths, two to a byte
  return {host = r_host, title = r_title, len = r_len, n = r_n, teff = r_teff,
          places = {string.byte(rec, 16, 15 + packed)}, id = sub(rec, 16 + packed)}
end

-- near-duplicates: one HMGET per fingerprint hash reads the bucket of every sample
local none = {}
local live_vals, seed_vals = none, none
if n_samples > 0 then
  seed_vals = call('HMGET', SEED_FP, unpack(buckets))
  if not seed then live_vals = call('HMGET', LIVE_FP, unpack(buckets)) end
end
local WIDTH = FIELD_BYTES + 5 -- a record: field | tag | doc number (4 bytes)

-- Which samples each indexed document shares. A field with more than CAP live postings is
-- boilerplate, not evidence: it is ignored, and no longer grows.
local shared, where, room, fields = {}, {}, {}, {}
local function scan(data, field, hits)
  local init = 1
  while true do
    local s = find(data, field, init, true)
    if not s then return hits end
    if (s - 1) % WIDTH == 0 then
      local g = live[sub(data, s + FIELD_BYTES, s + FIELD_BYTES)]
      if g then hits[#hits + 1] = {struct.unpack('>I4', data, s + FIELD_BYTES + 1), g} end
      init = s + WIDTH
    else
      init = s + 1 -- the bytes matched across two records: keep looking
    end
  end
end
for i = 1, n_samples do
  local at = (i - 1) * 8
  local field = sub(blob, at + 4, at + 3 + FIELD_BYTES)
  fields[i] = field
  local sd, ld = seed_vals[i], live_vals[i]
  -- most samples of a new article are in no record: one find per bucket decides that
  if (sd and find(sd, field, 1, true)) or (ld and find(ld, field, 1, true)) then
    local hits = {}
    if sd then scan(sd, field, hits) end
    if ld then scan(ld, field, hits) end
    if #hits > CAP then
      room[i] = false
    else
      for _, h in ipairs(hits) do
        local s = shared[h[1]]
        if not s then s = {}; shared[h[1]] = s end
        s[#s + 1] = i
        where[h[1]] = h[2]
      end
    end
  end
end

-- Containment of the smaller text in the larger, estimated on the range of hash values both
-- sketches cover: below the lower of the document's stored threshold and the query's queried one.
-- Matches, query samples and document samples are all counted on that same range.
local top
local best_doc, best_score, best_rec = nil, 0, nil
for doc, s in pairs(shared) do
  if #s >= MIN_MATCHES then
    local rec = read_doc(where[doc], doc)
    if rec then
      if not top then
        top = {}
        for i = 1, n_samples do top[i] = struct.unpack('>H', blob, (i - 1) * 8 + 1) end
      end
      local thr = math.min(rec.teff, q_range)
      local m, nq = 0, 0
      for _, i in ipairs(s) do
        if top[i] < thr then m = m + 1 end
      end
      for i = 1, n_samples do
        if top[i] < thr then nq = nq + 1 end
      end
      local nd = rec.n
      if rec.teff > thr then
        -- the document's samples below thr, counted from where each lies in its stored range
        local cut = thr * 16 / rec.teff
        nd = 0
        for k = 1, rec.n do
          local b = rec.places[math.ceil(k / 2)]
          local p = (k % 2 == 1) and math.floor(b / 16) or b % 16
          if p + 0.5 < cut then nd = nd + 1 end
        end
      end
      local denom = math.min(nq, nd)
      if m >= MIN_MATCHES and denom >= 1 then
        local score = math.min(1, m / denom)
        if score > best_score or (score == best_score and best_doc and doc < best_doc) then
          best_doc, best_score, best_rec = doc, score, rec
        end
      end
    end
  end
end

local function changes(rec)
  return {title_changed = (rec.title ~= title), old_text_length = rec.len, new_text_length = text_len}
end

local decision
-- seeds are indexed under seed: pseudo-URLs, which no article has: an article skips that lookup
local url_doc, url_gen = lookup('url', url_shard, url_field, seed and 1 or 2)
local content_doc, content_gen = lookup('content', content_shard, content_field, 1)
if url_doc then
  local rec = read_doc(url_gen, url_doc)
  if rec and content_doc == url_doc then
    decision = {id = revision_id, dup = {of = rec.id, method = 'url', score = 1}}
  elseif rec then
    local score = 0
    if best_doc == url_doc then score = best_score end
    decision = {id = revision_id, dup = {of = rec.id, method = 'revision', score = score, changes = changes(rec)}}
  end
end
if not decision and content_doc then
  local rec = read_doc(content_gen, content_doc)
  if rec then decision = {id = item_id, dup = {of = rec.id, method = 'content', score = 1}} end
end
if not decision and best_doc and best_score >= THRESHOLD then
  if best_rec.host == host and host ~= 0 then
    decision = {id = item_id, dup = {of = best_rec.id, method = 'revision', score = best_score,
                                     changes = changes(best_rec)}}
  else
    decision = {id = item_id, dup = {of = best_rec.id, method = 'near', score = best_score}}
  end
end

-- A bucket's records without those of generations that left the window. Records are appended in
-- time order, so the writer calls this only when the oldest record has left (about once per bucket
-- per generation), and then every record is checked.
local function trimmed(data)
  local kept = {}
  for p = 1, #data, WIDTH do
    if keep[sub(data, p + FIELD_BYTES, p + FIELD_BYTES)] then kept[#kept + 1] = sub(data, p, p + WIDTH - 1) end
  end
  return table.concat(kept)
end

if not decision then
  -- new: index it in the current generation
  local doc = call('INCR', SEQ_KEY)
  local gen = seed and SEED_GEN or tostring(current)
  local expire_at = not seed and expiry(current)
  local new_gen = not seed and gens[2] ~= gen
  -- HSET answers how many fields it added: a shard key's first write also adds the empty field,
  -- so 2 means the key was just created and needs its TTL (the generation's expiry)
  local function put(k, f, v)
    if call('HSET', k, f, v, '', '') == 2 and expire_at then call('EXPIREAT', k, expire_at) end
  end
  put(key(gen, 'url', url_shard), url_field, doc)
  put(key(gen, 'content', content_shard), content_field, doc)
  local dk, df = doc_key(gen, doc)
  put(dk, df, record)
  -- every posting in one HSET: each bucket's old records (trimmed) followed by the new one
  local suffix = mine .. struct.pack('>I4', doc % 4294967296)
  local old = seed and seed_vals or live_vals
  local args, at = {}, {}
  for i = 1, n_stored do
    if room[i] ~= false then
      local b = buckets[i]
      local j = at[b]
      if j then
        args[j] = args[j] .. fields[i] .. suffix -- two samples share this bucket: both records go in
      else
        local data = old[i]
        if data and not keep[sub(data, FIELD_BYTES + 1, FIELD_BYTES + 1)] then data = trimmed(data) end
        args[#args + 1] = b
        args[#args + 1] = (data or '') .. fields[i] .. suffix
        at[b] = #args
      end
    end
  end
  if #args > 0 then
    if seed then
      -- a value longer than hash-max-listpack-value keeps this small hash a hash table, so the
      -- HMGET of every claim looks its fields up instead of scanning a listpack
      args[#args + 1] = ''
      args[#args + 1] = SENTINEL
    end
    call('HSET', seed and SEED_FP or LIVE_FP, unpack(args))
  end
  if new_gen then
    -- a generation's first article: register it, and forget those past their expiry
    local now = tonumber(call('TIME')[1])
    call('ZADD', GENS_KEY, expire_at, gen)
    call('ZREMRANGEBYSCORE', GENS_KEY, '-inf', '(' .. now)
    -- The live fingerprint hash lives until its newest generation expires: it goes only when
    -- nothing was written for a whole window, when every record in it has expired. (A worker
    -- whose clock lags, writing an older generation, must not shorten that.)
    local ttl = call('TTL', LIVE_FP)
    if ttl < 0 or now + ttl < expire_at then call('EXPIREAT', LIVE_FP, expire_at) end
  end
  decision = {id = item_id}
end

local encoded = cjson.encode(decision)
call('HSET', job_key, 'claim', encoded)
return CLAIMED(encoded, decision)
