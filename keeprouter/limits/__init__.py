"""Per-key rate limits (`rpm_limit`, `tpm_limit`): one small protocol (`base.RateLimiter`), counted
in this process's memory (`memory`) or atomically in Redis (`redis`, one Lua script per step), with
`failover.FailoverLimiter` falling back from Redis to memory while Redis does not answer."""
