DROP TABLE exchange_minutes;
