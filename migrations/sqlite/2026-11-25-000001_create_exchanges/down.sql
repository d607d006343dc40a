DROP TABLE exchanges;
