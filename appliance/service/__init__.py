"""Running as a service: systemd notification and watchdog, graceful stop, status socket, metrics."""
