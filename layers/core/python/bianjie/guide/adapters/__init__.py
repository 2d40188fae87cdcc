"""Guide's adapters: SQS channel queues, the WeChat subscribe-message and Aliyun SMS clients. Their local
stand-ins (which speak the platforms' protocols and record every request in the outbox table) are
tooling, in ``bianjie_dev.guide.adapters``."""
