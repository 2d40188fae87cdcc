"""Guide's adapters: SQS channel queues, the WeChat subscribe-message and Aliyun SMS clients, and their
local stand-ins (which speak the platforms' protocols and record every request in the outbox table)."""
