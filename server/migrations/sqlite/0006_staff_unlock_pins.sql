
ALTER TABLE staff ADD COLUMN unlock_id TEXT;
ALTER TABLE staff ADD COLUMN unlock_pin_phc TEXT;
ALTER TABLE staff ADD COLUMN unlock_pin_set_at TEXT;
CREATE UNIQUE INDEX staff_by_unlock_id ON staff (unlock_id);
DELETE FROM settings WHERE key = 'staff_pin_hash';
