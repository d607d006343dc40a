DROP TABLE exchange_tallies;
DROP TABLE exchange_minutes;
