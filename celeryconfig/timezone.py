"""Timezone: an explicit zone for beat's crontab schedules, UTC on the wire."""
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._env import ConfigError, text

timezone = text("CELERY_TIMEZONE", "Asia/Seoul")
try:
    ZoneInfo(timezone)
except (ZoneInfoNotFoundError, ValueError):
    raise ConfigError("CELERY_TIMEZONE", timezone, "no such IANA time zone (e.g. Europe/Berlin, UTC)") from None

enable_utc = True
