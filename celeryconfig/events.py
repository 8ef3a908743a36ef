"""Events for Flower: workers publish task events, producers publish task-sent events."""
worker_send_task_events = True
task_send_sent_event = True
# Keep args/kwargs/name in the result so Flower and the producer API can show them.
result_extended = True
