-- A class set from one card image (issue 15): the list IT uploads (`slate-server device numbers
-- --file serials.csv`) of which device number each Raspberry Pi serial or MAC address gets. A
-- device with no number in its slate.toml asks with its class-set token and its serial. The
-- whole list is replaced at each upload; a serial and a number each appear once.
CREATE TABLE device_serials (
    serial   TEXT   PRIMARY KEY CHECK (length(serial) BETWEEN 1 AND 32),
    device   BIGINT NOT NULL UNIQUE CHECK (device BETWEEN 1 AND 9999),
    added_at TEXT   NOT NULL
);
