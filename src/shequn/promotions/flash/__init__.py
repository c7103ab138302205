"""Flash sales (秒杀): stock and per-customer limits held atomically (Redis script or SQL), reservations."""
