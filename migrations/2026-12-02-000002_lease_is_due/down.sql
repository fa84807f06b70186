-- Nothing to undo: the older version reads these rows the same way (due once the lease ends).
SELECT 1;
