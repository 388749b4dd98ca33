//! `ft.data.rng(seed)`: a seeded random stream for Lua code that must draw the same numbers on
//! every run (augmentation), independent of Lua's global `math.random`.

use mlua::{UserData, UserDataMethods};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct LuaRng(ChaCha8Rng);

impl LuaRng {
    pub fn new(seed: u64) -> LuaRng {
        LuaRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// The stream for sample `index` in `epoch` of a run seeded with `seed`.
    pub fn for_sample(seed: u64, epoch: u64, index: usize) -> LuaRng {
        let mix = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        LuaRng::new(mix)
    }
}

impl UserData for LuaRng {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // As math.random: () -> float in [0, 1); (n) -> integer in [1, n]; (m, n) -> integer in [m, n].
        methods.add_method_mut("random", |_, this, (m, n): (Option<i64>, Option<i64>)| {
            let (low, high) = match (m, n) {
                (None, _) => return Ok(mlua::Value::Number(this.0.gen::<f64>())),
                (Some(n), None) => (1, n),
                (Some(m), Some(n)) => (m, n),
            };
            if low > high {
                return Err(mlua::Error::runtime(format!("rng:random: empty interval [{low}, {high}]")));
            }
            Ok(mlua::Value::Integer(this.0.gen_range(low..=high)))
        });
    }
}
