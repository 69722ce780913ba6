//! The one trait both databases sit behind ([`Database`]: SQLite by default, PostgreSQL for
//! trusts), and the small API the store's modules write their SQL against.
//!
//! SQL is written once, in the dialect both understand: `$1`-style numbered placeholders
//! (PostgreSQL's own; SQLite binds them by their number, see `sqlite.rs`, so a number may come
//! in any order and more than once), `ON CONFLICT`, `RETURNING`, times as fixed-width text. The
//! few places the dialects differ (JSON) ask [`Backend`] for their fragment.

use super::StoreError;
use std::ops::Deref;

/// Which database is behind a [`Database`]: for the few SQL fragments that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A text field of a JSON object held in a TEXT column, or NULL.
    pub fn json_text(self, column: &str, field: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_extract({column}, '$.{field}')"),
            Backend::Postgres => format!("({column}::jsonb ->> '{field}')"),
        }
    }

    /// A JSON array (as text) of `expression` over the rows of `from`, in `order`.
    pub fn json_array_agg(self, expression: &str, from: &str, order: &str) -> String {
        match self {
            Backend::Sqlite => format!(
                "(SELECT json_group_array({expression}) FROM (SELECT {expression} FROM {from} \
                 ORDER BY {order}))"
            ),
            Backend::Postgres => format!(
                "(SELECT coalesce(json_agg({expression} ORDER BY {order}), '[]')::text FROM {from})"
            ),
        }
    }
}

/// One value, as both databases store it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A `WHERE` condition built from the fields a search sets: each part's `?` becomes the next
/// numbered placeholder, so a search names only what it asks for (and each uses its indexes).
#[derive(Debug)]
pub(crate) struct Conditions {
    parts: Vec<String>,
    values: Vec<Value>,
    /// The number of the first placeholder (those before are the query's own).
    first: usize,
}

impl Conditions {
    pub(crate) fn numbered_from(first: usize) -> Self {
        Self { parts: vec!["1 = 1".into()], values: Vec::new(), first }
    }

    /// A part without a value.
    pub(crate) fn fixed(&mut self, part: &str) {
        self.parts.push(part.to_owned());
    }

    /// A part whose one `?` is `value`.
    pub(crate) fn bind(&mut self, part: &str, value: Value) {
        let placeholder = format!("${}", self.first + self.values.len());
        self.values.push(value);
        self.parts.push(part.replace('?', &placeholder));
    }

    /// A part whose `?`s are `values`, one each, in order.
    pub(crate) fn bind_each(&mut self, part: &str, values: Vec<Value>) {
        assert_eq!(part.matches('?').count(), values.len(), "one value for each ? in {part}");
        let mut pieces = part.split('?');
        let mut text = pieces.next().unwrap_or_default().to_owned();
        for (piece, value) in pieces.zip(values) {
            text.push_str(&format!("${}{piece}", self.first + self.values.len()));
            self.values.push(value);
        }
        self.parts.push(text);
    }

    pub(crate) fn finish(self) -> (String, Vec<Value>) {
        (self.parts.join(" AND "), self.values)
    }
}

/// A connection to one database. Object-safe: the store holds a `Box<dyn Database>`; the
/// methods the store's modules call are on `dyn Database` below.
pub trait Database: Send {
    fn backend(&self) -> Backend;
    /// Runs one statement; returns how many rows it changed.
    fn execute_values(&self, sql: &str, params: &[Value]) -> Result<usize, StoreError>;
    /// Runs one statement and returns all its rows.
    fn query_values(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;
    /// Runs statements without parameters (transaction control, schema).
    fn execute_batch(&self, sql: &str) -> Result<(), StoreError>;
    /// Starts a transaction that takes the write lock at once (SQLite's `BEGIN IMMEDIATE`), so
    /// a transaction that reads then writes never fails half-way on a busy database.
    fn begin(&self) -> Result<(), StoreError>;
}

impl<'d> dyn Database + 'd {
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize, StoreError> {
        self.execute_values(sql, &params.into_values()?)
    }

    /// The first row's `map`, or [`StoreError::NoRows`] (see [`OptionalExtension`]).
    pub fn query_row<P: Params, T>(
        &self,
        sql: &str,
        params: P,
        map: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.query_values(sql, &params.into_values()?)?.first() {
            Some(row) => map(row),
            None => Err(StoreError::NoRows),
        }
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>, StoreError> {
        Ok(Statement { database: self, sql: sql.to_owned() })
    }

    /// The same as [`prepare`](Self::prepare): both backends cache every statement they run.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>, StoreError> {
        self.prepare(sql)
    }

    /// A transaction that rolls back unless committed.
    pub fn transaction(&self) -> Result<Transaction<'_>, StoreError> {
        self.begin()?;
        Ok(Transaction { database: self, open: true })
    }
}

/// A statement to run with different parameters.
pub struct Statement<'a> {
    database: &'a (dyn Database + 'a),
    sql: String,
}

impl Statement<'_> {
    pub fn query_map<P: Params, T>(
        &mut self,
        params: P,
        mut map: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<std::vec::IntoIter<Result<T, StoreError>>, StoreError> {
        let rows = self.database.query_values(&self.sql, &params.into_values()?)?;
        Ok(rows.iter().map(&mut map).collect::<Vec<_>>().into_iter())
    }

    pub fn query_row<P: Params, T>(
        &mut self,
        params: P,
        map: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.database.query_row(&self.sql, params, map)
    }

    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize, StoreError> {
        self.database.execute(&self.sql, params)
    }
}

/// An open transaction; dropped without [`commit`](Transaction::commit), it rolls back.
pub struct Transaction<'a> {
    database: &'a (dyn Database + 'a),
    open: bool,
}

impl Transaction<'_> {
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        self.database.execute_batch("COMMIT")
    }
}

impl<'a> Deref for Transaction<'a> {
    type Target = dyn Database + 'a;
    fn deref(&self) -> &Self::Target {
        self.database
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // An error here means the connection is gone, and the transaction with it.
            if let Err(error) = self.database.execute_batch("ROLLBACK") {
                tracing::warn!(%error, "cannot roll back a transaction");
            }
        }
    }
}

/// One row of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub fn new(values: Vec<Value>) -> Self {
        Self { values }
    }

    /// Column `index` as a `T`; a NULL or a value of another kind is an error unless `T`
    /// allows it (`Option`).
    pub fn get<I: RowIndex, T: FromSql>(&self, index: I) -> Result<T, StoreError> {
        let index = index.index();
        let value = self
            .values
            .get(index)
            .ok_or_else(|| StoreError::Value(format!("no column {index} in a row")))?;
        T::from_value(value).map_err(|e| StoreError::Value(format!("column {index}: {e}")))
    }
}

/// What [`Row::get`] takes: a column's position.
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// What a statement's `$N` parameters can be given: a tuple of values, `[]` for none, or a
/// slice (`params![...]`).
pub trait Params {
    fn into_values(self) -> Result<Vec<Value>, StoreError>;
}

impl Params for [&dyn ToSql; 0] {
    fn into_values(self) -> Result<Vec<Value>, StoreError> {
        Ok(Vec::new())
    }
}

// Sizes one and up, one by one: a generic `N` would overlap `[]` above and leave `[]`'s type
// unknown.
macro_rules! array_params {
    ($($n:literal)+) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn into_values(self) -> Result<Vec<Value>, StoreError> {
                self.iter().map(|p| p.to_value()).collect()
            }
        }
    )+};
}
array_params!(1 2 3 4 5 6 7 8);

impl Params for &[&dyn ToSql] {
    fn into_values(self) -> Result<Vec<Value>, StoreError> {
        self.iter().map(|p| p.to_value()).collect()
    }
}

macro_rules! tuple_params {
    ($($name:ident)+) => {
        impl<$($name: ToSql),+> Params for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_values(self) -> Result<Vec<Value>, StoreError> {
                let ($($name,)+) = self;
                Ok(vec![$($name.to_value()?),+])
            }
        }
    };
}
tuple_params!(A);
tuple_params!(A B);
tuple_params!(A B C);
tuple_params!(A B C D);
tuple_params!(A B C D E);
tuple_params!(A B C D E F);
tuple_params!(A B C D E F G);
tuple_params!(A B C D E F G H);
tuple_params!(A B C D E F G H I);
tuple_params!(A B C D E F G H I J);
tuple_params!(A B C D E F G H I J K);
tuple_params!(A B C D E F G H I J K L);
tuple_params!(A B C D E F G H I J K L M);
tuple_params!(A B C D E F G H I J K L M N);

/// Parameters of different types as a slice: `params![limit, device]`.
#[macro_export]
macro_rules! sql_params {
    ($($value:expr),* $(,)?) => {
        &[$(&$value as &dyn $crate::store::sql::ToSql),*] as &[&dyn $crate::store::sql::ToSql]
    };
}
pub use crate::sql_params as params;

/// A Rust value that can be a statement's parameter.
pub trait ToSql {
    fn to_value(&self) -> Result<Value, StoreError>;
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Result<Value, StoreError> {
        (**self).to_value()
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Result<Value, StoreError> {
        match self {
            Some(value) => value.to_value(),
            None => Ok(Value::Null),
        }
    }
}

impl ToSql for Value {
    fn to_value(&self) -> Result<Value, StoreError> {
        Ok(self.clone())
    }
}

impl ToSql for str {
    fn to_value(&self) -> Result<Value, StoreError> {
        Ok(Value::Text(self.to_owned()))
    }
}

impl ToSql for String {
    fn to_value(&self) -> Result<Value, StoreError> {
        Ok(Value::Text(self.clone()))
    }
}

impl ToSql for [u8] {
    fn to_value(&self) -> Result<Value, StoreError> {
        Ok(Value::Blob(self.to_vec()))
    }
}

impl ToSql for Vec<u8> {
    fn to_value(&self) -> Result<Value, StoreError> {
        Ok(Value::Blob(self.clone()))
    }
}

impl<const N: usize> ToSql for [u8; N] {
    fn to_value(&self) -> Result<Value, StoreError> {
        Ok(Value::Blob(self.to_vec()))
    }
}

impl ToSql for bool {
    fn to_value(&self) -> Result<Value, StoreError> {
        Ok(Value::Integer(i64::from(*self)))
    }
}

impl ToSql for f64 {
    fn to_value(&self) -> Result<Value, StoreError> {
        Ok(Value::Real(*self))
    }
}

macro_rules! integer_to_sql {
    ($($t:ty)+) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Result<Value, StoreError> {
                i64::try_from(*self).map(Value::Integer).map_err(|_| {
                    StoreError::Value(format!("{self} is too large for the database"))
                })
            }
        }
    )+};
}
integer_to_sql!(i8 i16 i32 i64 u8 u16 u32 u64 usize);

/// A Rust value a column can be read as.
pub trait FromSql: Sized {
    fn from_value(value: &Value) -> Result<Self, String>;
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Real(_) => "a real number",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            value => T::from_value(value).map(Some),
        }
    }
}

impl FromSql for Value {
    fn from_value(value: &Value) -> Result<Self, String> {
        Ok(value.clone())
    }
}

impl FromSql for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(text) => Ok(text.clone()),
            other => Err(format!("expected text, found {}", kind(other))),
        }
    }
}

impl FromSql for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Blob(bytes) => Ok(bytes.clone()),
            other => Err(format!("expected bytes, found {}", kind(other))),
        }
    }
}

impl<const N: usize> FromSql for [u8; N] {
    fn from_value(value: &Value) -> Result<Self, String> {
        let bytes = Vec::<u8>::from_value(value)?;
        let length = bytes.len();
        bytes.try_into().map_err(|_| format!("expected {N} bytes, found {length}"))
    }
}

impl FromSql for f64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Real(real) => Ok(*real),
            Value::Integer(integer) => Ok(*integer as f64),
            other => Err(format!("expected a number, found {}", kind(other))),
        }
    }
}

impl FromSql for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Integer(0) => Ok(false),
            Value::Integer(1) => Ok(true),
            other => Err(format!("expected 0 or 1, found {other:?}")),
        }
    }
}

macro_rules! integer_from_sql {
    ($($t:ty)+) => {$(
        impl FromSql for $t {
            fn from_value(value: &Value) -> Result<Self, String> {
                match value {
                    Value::Integer(integer) => <$t>::try_from(*integer)
                        .map_err(|_| format!("{integer} is out of range for {}", stringify!($t))),
                    other => Err(format!("expected an integer, found {}", kind(other))),
                }
            }
        }
    )+};
}
integer_from_sql!(i8 i16 i32 i64 u8 u16 u32 u64 usize);

/// Turns `.optional()` on a single-row query into `None` when there was no row.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>, StoreError>;
}

impl<T> OptionalExtension<T> for Result<T, StoreError> {
    fn optional(self) -> Result<Option<T>, StoreError> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(StoreError::NoRows) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_convert_and_name_what_is_wrong() {
        let row = Row::new(vec![
            Value::Integer(7),
            Value::Null,
            Value::Text("t".into()),
            Value::Integer(-1),
            Value::Blob(vec![1, 2]),
        ]);
        assert_eq!(row.get::<_, i64>(0).unwrap(), 7);
        assert_eq!(row.get::<_, u16>(0).unwrap(), 7);
        assert_eq!(row.get::<_, Option<String>>(1).unwrap(), None);
        assert_eq!(row.get::<_, String>(2).unwrap(), "t");
        assert_eq!(row.get::<_, [u8; 2]>(4).unwrap(), [1, 2]);
        let wrong = |e: StoreError| e.to_string();
        assert!(wrong(row.get::<_, String>(1).unwrap_err()).contains("column 1: expected text"));
        assert!(wrong(row.get::<_, u32>(3).unwrap_err()).contains("-1 is out of range for u32"));
        assert!(wrong(row.get::<_, [u8; 3]>(4).unwrap_err()).contains("expected 3 bytes"));
        assert!(wrong(row.get::<_, i64>(9).unwrap_err()).contains("no column 9"));
    }

    #[test]
    fn conditions_number_each_placeholder_after_the_querys_own() {
        let mut c = Conditions::numbered_from(3);
        c.bind("a = ?", Value::Integer(1));
        c.bind_each(
            "(t < ? OR (t = ? AND id < ?))",
            vec![Value::Integer(2), Value::Integer(3), Value::Integer(4)],
        );
        c.bind("b = ?", Value::Integer(5));
        let (condition, values) = c.finish();
        assert_eq!(condition, "1 = 1 AND a = $3 AND (t < $4 OR (t = $5 AND id < $6)) AND b = $7");
        assert_eq!(values, (1..=5).map(Value::Integer).collect::<Vec<_>>());
    }

    #[test]
    fn params_become_values() {
        let values = (1u32, "a", None::<String>, true, vec![9u8]).into_values().unwrap();
        assert_eq!(
            values,
            vec![
                Value::Integer(1),
                Value::Text("a".into()),
                Value::Null,
                Value::Integer(1),
                Value::Blob(vec![9])
            ]
        );
        assert!(u64::MAX.to_value().is_err(), "no silent wrap to a negative number");
        assert_eq!(params![1i64, "b"].into_values().unwrap().len(), 2);
    }
}
