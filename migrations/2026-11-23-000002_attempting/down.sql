ALTER TABLE deliveries DROP COLUMN attempting;
