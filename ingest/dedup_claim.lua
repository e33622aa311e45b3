-- Atomic dedup claim (see ingest/dedup.py for the layout). One call decides whether an article
-- is new or a duplicate and, when new, indexes it; Redis runs it alone, so racing workers with
-- two copies of one article are serialised and exactly one copy is accepted.
-- Idempotent per job: a re-run after a crash returns the decision recorded the first time.
--
-- Cost model (measured on the benchmark machine): every redis.call costs about a microsecond and
-- every key touched a few cache misses, whatever the command does. So the fingerprint buckets of
-- a claim are read with ONE HMGET and written with ONE HSET, and the client sends the bucket
-- names ready-made (building strings in Lua costs as much as a command).
local find, sub, call = string.find, string.sub, redis.call

local job_key = ARGV[1]
local prior = call('HGET', job_key, 'claim')
if prior then return prior end

local prefix, seq_key, gens_key = ARGV[2], ARGV[3], ARGV[4]
local seed_gen, live_fp, seed_fp = ARGV[5], ARGV[6], ARGV[7]
local current, window = tonumber(ARGV[8]), tonumber(ARGV[9])
local span, retention, seed = tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[12] == '1'
local threshold, min_matches, cap = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local record, item_id, revision_id = ARGV[16], ARGV[17], ARGV[18]
local q_range, n_stored, blob = tonumber(ARGV[19]), tonumber(ARGV[20]), ARGV[21]
local field_bytes, sentinel = tonumber(ARGV[22]), ARGV[23]
local url_shard, url_field = ARGV[24], ARGV[25]
local content_shard, content_field = ARGV[26], ARGV[27]
-- blob: the n samples as 8 big-endian bytes each, then the hash field (bucket) of each as 4 bytes
local n_samples = #blob / 12
local buckets = {}
for i = 1, n_samples do buckets[i] = sub(blob, 8 * n_samples + 4 * i - 3, 8 * n_samples + 4 * i) end
local host, title, text_len = struct.unpack('>III', record)

local function key(g, tbl, shard) return prefix .. g .. ':' .. tbl .. ':' .. shard end
local function expiry(g) return math.ceil((g + 1) * span + retention) end

-- Generations. Seed claims see only seeds. Others see seeds and the retention window, newest
-- first, skipping generations that hold nothing (one ZMSCORE instead of a lookup in each).
local gens = {seed_gen}
if not seed then
  local wanted = {}
  for g = current, current - window, -1 do wanted[#wanted + 1] = tostring(g) end
  local scores = call('ZMSCORE', gens_key, unpack(wanted))
  for i, g in ipairs(wanted) do
    if scores[i] then gens[#gens + 1] = g end
  end
end

-- Fingerprint records carry a one-byte generation tag: tag(g) for generation g, '\0' for seeds.
local SEED = '\0'
local function tag(g) return string.char(g % 255 + 1) end
local mine = seed and SEED or tag(current)
local live = {[SEED] = seed_gen} -- tag -> generation name, for the tags a claim reads
for i = 2, #gens do live[tag(tonumber(gens[i]))] = gens[i] end
local keep = {[SEED] = true} -- tags a rewrite keeps: the window and one generation ahead
for g = current - window, current + 1 do keep[tag(g)] = true end

-- exact tables: first generation (seed, then newest first) holding the digest
local function lookup(tbl, shard, field)
  for _, g in ipairs(gens) do
    local v = call('HGET', key(g, tbl, shard), field)
    if v then return tonumber(v), g end
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
  return {host = r_host, title = r_title, len = r_len, n = r_n, teff = r_teff, id = sub(rec, 16)}
end

-- near-duplicates: one HMGET per fingerprint hash reads the bucket of every sample
local none = {}
local live_vals, seed_vals = none, none
if n_samples > 0 then
  seed_vals = call('HMGET', seed_fp, unpack(buckets))
  if not seed then live_vals = call('HMGET', live_fp, unpack(buckets)) end
end
local WIDTH = field_bytes + 5 -- a record: field | tag | doc number (4 bytes)

-- Which samples each indexed document shares. A field with more than `cap` live postings is
-- boilerplate, not evidence: it is ignored, and no longer grows.
local shared, where, room, fields = {}, {}, {}, {}
local function scan(data, field, hits)
  local init = 1
  while true do
    local s = find(data, field, init, true)
    if not s then return hits end
    if (s - 1) % WIDTH == 0 then
      local g = live[sub(data, s + field_bytes, s + field_bytes)]
      if g then hits[#hits + 1] = {struct.unpack('>I4', data, s + field_bytes + 1), g} end
      init = s + WIDTH
    else
      init = s + 1 -- the bytes matched across two records: keep looking
    end
  end
end
for i = 1, n_samples do
  local at = (i - 1) * 8
  local field = sub(blob, at + 4, at + 3 + field_bytes)
  fields[i] = field
  local sd, ld = seed_vals[i], live_vals[i]
  -- most samples of a new article are in no record: one find per bucket decides that
  if (sd and find(sd, field, 1, true)) or (ld and find(ld, field, 1, true)) then
    local hits = {}
    if sd then scan(sd, field, hits) end
    if ld then scan(ld, field, hits) end
    if #hits > cap then
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
  if #s >= min_matches then
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
      if rec.teff > thr then nd = rec.n * thr / rec.teff end
      local denom = math.min(nq, nd)
      if m >= min_matches and denom >= 1 then
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
local url_doc, url_gen = lookup('url', url_shard, url_field)
local content_doc, content_gen = lookup('content', content_shard, content_field)
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
if not decision and best_doc and best_score >= threshold then
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
    if keep[sub(data, p + field_bytes, p + field_bytes)] then kept[#kept + 1] = sub(data, p, p + WIDTH - 1) end
  end
  return table.concat(kept)
end

if not decision then
  -- new: index it in the current generation
  local doc = call('INCR', seq_key)
  local gen = seed and seed_gen or tostring(current)
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
        if data and not keep[sub(data, field_bytes + 1, field_bytes + 1)] then data = trimmed(data) end
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
      args[#args + 1] = sentinel
    end
    call('HSET', seed and seed_fp or live_fp, unpack(args))
  end
  if new_gen then
    -- a generation's first article: register it, and forget those past their expiry
    local now = tonumber(call('TIME')[1])
    call('ZADD', gens_key, expire_at, gen)
    call('ZREMRANGEBYSCORE', gens_key, '-inf', '(' .. now)
    -- The live fingerprint hash lives until its newest generation expires: it goes only when
    -- nothing was written for a whole window, when every record in it has expired. (A worker
    -- whose clock lags, writing an older generation, must not shorten that.)
    local ttl = call('TTL', live_fp)
    if ttl < 0 or now + ttl < expire_at then call('EXPIREAT', live_fp, expire_at) end
  end
  decision = {id = item_id}
end

local encoded = cjson.encode(decision)
call('HSET', job_key, 'claim', encoded)
return encoded
