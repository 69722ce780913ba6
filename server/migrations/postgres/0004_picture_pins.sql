
ALTER TABLE pupils ADD COLUMN picture_pin TEXT;
