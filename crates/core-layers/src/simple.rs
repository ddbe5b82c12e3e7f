//! The scalar layers of DLFS §5.4, the apple-shopping example's building blocks.

use num_traits::Float;

/// Multiplication node (DLFS §5.4.1): `out = x · y`.
///
/// Derivatives: `∂out/∂x = y`, `∂out/∂y = x`, so `forward` caches both inputs
/// and `backward` swaps them.
///
/// ```
/// # use core_layers::MulLayer;
/// let mut mul = MulLayer::default();
/// assert_eq!(mul.forward(100.0, 2.0), 200.0);
/// assert_eq!(mul.backward(1.0), (2.0, 100.0));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MulLayer<A> {
    xy: Option<(A, A)>,
}

impl<A: Float> MulLayer<A> {
    /// Returns `x · y` and caches `x` and `y`.
    pub fn forward(&mut self, x: A, y: A) -> A {
        self.xy = Some((x, y));
        x * y
    }

    /// Returns `(dout · y, dout · x)`.
    ///
    /// # Panics
    ///
    /// If called before [`forward`](MulLayer::forward).
    #[track_caller]
    pub fn backward(&self, dout: A) -> (A, A) {
        let (x, y) = self.xy.expect("MulLayer::backward called before forward");
        (dout * y, dout * x)
    }
}

/// Addition node (DLFS §5.4.2): `out = x + y`.
///
/// Derivatives: both 1, so `backward` passes `dout` to both inputs and needs
/// no cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddLayer;

impl AddLayer {
    /// Returns `x + y`.
    pub fn forward<A: Float>(&mut self, x: A, y: A) -> A {
        x + y
    }

    /// Returns `(dout, dout)`.
    pub fn backward<A: Float>(&self, dout: A) -> (A, A) {
        (dout, dout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    /// DLFS §5.4: 2 apples at 100, 3 oranges at 150, consumption tax 1.1.
    /// The book prints price 715, and gradients 110, 2.2, 3.3, 165, 650.
    #[test]
    fn apple_and_orange_shopping() {
        let (apple, apple_num, orange, orange_num, tax) = (100.0_f64, 2.0, 150.0, 3.0, 1.1);
        let mut mul_apple = MulLayer::default();
        let mut mul_orange = MulLayer::default();
        let mut add_fruit = AddLayer;
        let mut mul_tax = MulLayer::default();

        let apple_price = mul_apple.forward(apple, apple_num);
        let orange_price = mul_orange.forward(orange, orange_num);
        let all_price = add_fruit.forward(apple_price, orange_price);
        let price = mul_tax.forward(all_price, tax);

        let (dall_price, dtax) = mul_tax.backward(1.0);
        let (dapple_price, dorange_price) = add_fruit.backward(dall_price);
        let (dorange, dorange_num) = mul_orange.backward(dorange_price);
        let (dapple, dapple_num) = mul_apple.backward(dapple_price);

        // 650 · 1.1 rounds to 715.0000000000001, as the book's Python prints.
        assert_eq!(price, 715.0000000000001);
        assert_abs_diff_eq!(dapple_num, 110.0, epsilon = 1e-12);
        assert_abs_diff_eq!(dapple, 2.2, epsilon = 1e-12);
        assert_abs_diff_eq!(dorange, 3.3, epsilon = 1e-12);
        assert_abs_diff_eq!(dorange_num, 165.0, epsilon = 1e-12);
        assert_eq!(dtax, 650.0);
    }

    #[test]
    #[should_panic(expected = "MulLayer::backward called before forward")]
    fn mul_backward_before_forward_is_a_bug() {
        MulLayer::<f32>::default().backward(1.0);
    }
}
