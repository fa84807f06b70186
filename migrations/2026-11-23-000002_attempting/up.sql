-- True while a worker is sending the delivery (it took the row for one attempt). A message for
-- a row being attempted is a duplicate and is dropped; recording the attempt, releasing the
-- row, or the scheduler re-claiming an expired lease sets it back to false.
ALTER TABLE deliveries ADD COLUMN attempting boolean NOT NULL DEFAULT false;
