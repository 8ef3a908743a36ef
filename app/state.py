"""The app's own Redis connection (locks, counters, beat trace), separate from Celery's."""
from functools import lru_cache

import redis

from celeryconfig.broker import app_redis_url


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(app_redis_url, decode_responses=True,
                                socket_timeout=10, health_check_interval=30)
