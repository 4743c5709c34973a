"""Operations: queue depths, dead-letter queues, task records for the API, the local runtime's counters."""
