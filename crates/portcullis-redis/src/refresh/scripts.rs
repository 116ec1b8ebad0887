//! The Lua scripts of [`RedisRefreshStore`](super::RedisRefreshStore).
//!
//! Every script touches the keys of one subject only, all carrying the subject's hash
//! tag `{T}`, so each runs in one slot of a Redis Cluster. Times are µs since the Unix
//! epoch as decimal strings (exact in Lua's doubles until the year 2255); key
//! expiries are Unix ms. Lua's `..` would print a number with 14 digits, so numbers
//! are formatted with `%.0f` or kept as the strings they came in.
//!
//! A family is one field of the subject's families hash, `family -> "R FEXP CLIENT"`
//! (`R` is `1` once revoked; `CLIENT` is the rest of the value, spaces included).

/// `extend(key, at_ms)`: make `key` live at least until `at_ms`, never shorter.
macro_rules! extend {
    () => {
        r"
local function extend(key, at_ms)
  local pttl = redis.call('PTTL', key)
  local clock = redis.call('TIME')
  local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  if pttl == -1 or (pttl >= 0 and now_ms + pttl < at_ms) then
    redis.call('PEXPIREAT', key, string.format('%.0f', at_ms))
  end
end
"
    };
}

/// Opens a family if the subject's stamp is still the one the login read.
///
/// KEYS: stamp, families, token. ARGV: stamp, family, subject, client, issued,
/// expires, family expires (µs), family expires (ms), cap on families per subject.
///
/// Forgets the subject's families past their absolute lifetime and, at the cap, the
/// oldest one (its tokens then read as unknown). A stamp that was ever moved lives at
/// least as long as every family it admitted.
pub(super) const CREATE: &str = concat!(
    extend!(),
    r"
local stamp = redis.call('GET', KEYS[1]) or '0'
if stamp ~= ARGV[1] then return 'ended' end
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return 'duplicate'
end
local now = tonumber(ARGV[5])
local families = redis.call('HGETALL', KEYS[2])
local count, oldest, oldest_exp = 0, nil, nil
for i = 1, #families, 2 do
  local exp = tonumber(string.match(families[i + 1], '^%d (%-?%d+) '))
  if not exp or exp <= now then
    redis.call('HDEL', KEYS[2], families[i])
  else
    count = count + 1
    if not oldest_exp or exp < oldest_exp then oldest, oldest_exp = families[i], exp end
  end
end
if count >= tonumber(ARGV[9]) then redis.call('HDEL', KEYS[2], oldest) end
redis.call('HSET', KEYS[3], 'f', ARGV[2], 's', ARGV[3], 'i', ARGV[5], 'e', ARGV[6])
redis.call('PEXPIREAT', KEYS[3], ARGV[8])
redis.call('HSET', KEYS[2], ARGV[2], '0 ' .. ARGV[7] .. ' ' .. ARGV[4])
extend(KEYS[2], tonumber(ARGV[8]))
if stamp ~= '0' then extend(KEYS[1], tonumber(ARGV[8])) end
return 'created'
"
);

/// The rotation contract of `RefreshStore`, in its order, as one atomic step.
///
/// KEYS: presented token, families, successor token. ARGV: client, now, idle
/// timeout, reuse interval (µs), successor hash, sealed successor (hex), the prefix
/// of the subject's token keys (a repeat reads the successor stored at first use:
/// a key with the same tag, not known before the script runs).
///
/// A zero reuse interval turns repeats off outright: a concurrent rotation whose
/// `now` was read before the winner's would otherwise fall "within" it.
pub(super) const ROTATE: &str = r"
local tok = redis.call('HMGET', KEYS[1], 'f', 's', 'e', 'u', 'n', 'z')
if not tok[1] then return {'unknown'} end
local family = redis.call('HGET', KEYS[2], tok[1])
if not family then return {'unknown'} end
local revoked, fexp, client = string.match(family, '^(%d) (%-?%d+) (.*)$')
if not revoked or not tok[2] then return redis.error_reply('ERR malformed refresh entry') end
if revoked == '1' then return {'revoked'} end
local now = tonumber(ARGV[2])
if tok[4] then
  local reuse = tonumber(ARGV[4])
  if reuse > 0 and now < tonumber(tok[4]) + reuse and client == ARGV[1] and tok[5] and tok[6] then
    local succ = redis.call('HMGET', ARGV[7] .. tok[5], 'i', 'e')
    if succ[1] and succ[2] then
      return {'repeated', tok[2], tok[1], client, succ[1], succ[2], fexp, tok[5], tok[6]}
    end
  end
  redis.call('HSET', KEYS[2], tok[1], '1 ' .. fexp .. ' ' .. client)
  return {'reused', tok[2], tok[1]}
end
if client ~= ARGV[1] then return {'mismatch'} end
if now >= tonumber(tok[3]) or now >= tonumber(fexp) then return {'expired'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'duplicate'} end
local exp = now + tonumber(ARGV[3])
if exp > tonumber(fexp) then exp = tonumber(fexp) end
exp = string.format('%.0f', exp)
redis.call('HSET', KEYS[1], 'u', ARGV[2], 'n', ARGV[5], 'z', ARGV[6])
redis.call('HSET', KEYS[3], 'f', tok[1], 's', tok[2], 'i', ARGV[2], 'e', exp)
redis.call('PEXPIREAT', KEYS[3], string.format('%.0f', math.ceil(tonumber(fexp) / 1000)))
return {'rotated', tok[2], tok[1], client, exp, fexp}
";

/// KEYS: token, families. Returns family, subject, issued, expires, family expires,
/// client; or nothing.
pub(super) const FIND: &str = r"
local tok = redis.call('HMGET', KEYS[1], 'f', 's', 'i', 'e')
if not tok[1] then return {} end
local family = redis.call('HGET', KEYS[2], tok[1])
if not family then return {} end
local fexp, client = string.match(family, '^%d (%-?%d+) (.*)$')
if not fexp or not tok[2] or not tok[3] or not tok[4] then
  return redis.error_reply('ERR malformed refresh entry')
end
return {tok[1], tok[2], tok[3], tok[4], fexp, client}
";

/// KEYS: families. ARGV: family. 1 if it was live.
pub(super) const REVOKE_FAMILY: &str = r"
local family = redis.call('HGET', KEYS[1], ARGV[1])
if not family or string.sub(family, 1, 1) ~= '0' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1' .. string.sub(family, 2))
return 1
";

/// Moves the stamp forward and revokes every family of the subject.
///
/// KEYS: stamp, families. ARGV: stamp retention (ms). Returns the families revoked.
///
/// The new stamp is `max(old + 1, server time in µs)`: it never repeats a value a
/// login could have read, even after the key expired and was read as 0 again.
pub(super) const END_SESSIONS: &str = r"
local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local now_ms = math.floor(now_us / 1000)
local stamp = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
if stamp < now_us then stamp = now_us end
local revoked = {}
local families = redis.call('HGETALL', KEYS[2])
for i = 1, #families, 2 do
  if string.sub(families[i + 1], 1, 1) == '0' then
    redis.call('HSET', KEYS[2], families[i], '1' .. string.sub(families[i + 1], 2))
    table.insert(revoked, families[i])
  end
end
local keep = now_ms + tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local pttl = redis.call('PTTL', key)
  if pttl > 0 and now_ms + pttl > keep then keep = now_ms + pttl end
end
redis.call('SET', KEYS[1], string.format('%.0f', stamp), 'PXAT', string.format('%.0f', keep))
return revoked
";
